"""Network emulation for simulations: per-link latency, jitter, bandwidth and loss.

``EmulatedTransport(MemoryTransport(), Link(latency=0.01))`` shows how an
algorithm behaves on slow or lossy links without real hosts. It wraps any
transport: ``send`` never blocks — an envelope due later goes on a heap that one
background task drains in due order. Each link (sender, recipient) keeps its
envelopes in order, as a TCP connection would, and with a finite bandwidth it
carries one envelope at a time (size = its encoded frame). Loss is emulated as
a reliable transport such as TCP lives it: a lost envelope is sent again after
the link's retransmission timeout (doubled at each further loss), so it arrives
late and holds back the envelopes behind it on its link, but it arrives; after
``MAX_RETRANSMITS`` losses in a row the link is given up on and the envelope is
lost. ``Link(loss="drop")`` emulates a datagram network instead: a dropped
envelope is lost silently, and the receiving node's sync timeout and panic
routine are what shows it. Random draws come from one seeded generator, so a
run is reproducible for the same order of sends.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

import anyio
from anyio.abc import TaskGroup

from ._codec import encode, frame_size
from ._envelope import Envelope
from .abc import Deliver, Transport

logger = logging.getLogger("peerflow.transport.emulated")

MAX_RETRANSMITS: Final = 15
"""Losses in a row after which a retransmitting link gives up (Linux's tcp_retries2)."""


@dataclass(frozen=True, slots=True)
class Link:
    """How one directed link behaves.

    Attributes:
        latency: one-way delay in seconds.
        jitter: extra delay drawn uniformly in [0, jitter] seconds (order is kept).
        bandwidth: bytes per second (inf: no transmission time).
        drop: probability that an envelope (or each of its retransmissions) is lost.
        loss: "retransmit" (a reliable link: a loss costs ``rto`` seconds, doubled
            at each further loss, and delays the envelopes behind it) or "drop" (a
            lost envelope never arrives).
        rto: retransmission timeout in seconds (Linux's minimum is 0.2).

    Raises:
        ValueError: a negative delay, a bandwidth <= 0, a drop outside [0, 1], or an
            unknown loss model.
    """

    latency: float = 0.0
    jitter: float = 0.0
    bandwidth: float = math.inf
    drop: float = 0.0
    loss: Literal["retransmit", "drop"] = "retransmit"
    rto: float = 0.2

    def __post_init__(self) -> None:
        if not (self.latency >= 0 and self.jitter >= 0 and self.rto >= 0):
            raise ValueError(f"latency, jitter and rto must be >= 0 s, got {self.latency}, "
                             f"{self.jitter}, {self.rto}")
        if not self.bandwidth > 0:
            raise ValueError(f"bandwidth must be > 0 bytes/s, got {self.bandwidth}")
        if not 0 <= self.drop <= 1:
            raise ValueError(f"drop must be a probability in [0, 1], got {self.drop}")
        if self.loss not in ("retransmit", "drop"):
            raise ValueError(f"loss must be 'retransmit' or 'drop', got {self.loss!r}")

    @property
    def instant(self) -> bool:
        """True if the link adds no delay (a loss retransmitted still does)."""
        return self.latency == 0 and self.jitter == 0 and self.bandwidth == math.inf


@dataclass
class LinkStats:
    """What the emulation did: envelopes sent, delivered late, retransmitted (each loss
    that a retransmission made up for), and lost for good."""

    sent: int = 0
    delayed: int = 0
    retransmitted: int = 0
    dropped: int = 0
    dropped_by_link: dict[tuple[str, str], int] = field(default_factory=dict)


class EmulatedTransport(Transport):
    """Wraps a transport and shapes its traffic link by link.

    Use it as ``async with`` (``peerflow.run`` does): that opens the inner
    transport and starts the delivery task; leaving discards what is still due.

    Args:
        inner: the transport that finally carries the envelopes.
        default: the behaviour of every link not named in ``links``.
        links: behaviour per (sender, recipient).
        exempt: actor names whose envelopes, sent or received, pass untouched
            (for example the controller, to shape only the peer-to-peer links).
        seed: seed of the loss and jitter draws.
        copy_on_send: snapshot ``send_values`` bodies (see ``Transport.copy_on_send``).
    """

    def __init__(self, inner: Transport, default: Link | None = None,
                 links: Mapping[tuple[str, str], Link] | None = None, *,
                 exempt: Collection[str] = (), seed: int = 0, copy_on_send: bool = True) -> None:
        self.inner = inner
        self.copy_on_send = copy_on_send
        self.default = default or Link()
        self.links = dict(links or {})
        self.exempt = frozenset(exempt)
        self.stats = LinkStats()
        self._rng = random.Random(seed)
        self._due: list[tuple[float, int, Envelope]] = []
        self._order = itertools.count()
        self._link_free: dict[tuple[str, str], tuple[float, float]] = {}
        self._pending: Counter[tuple[str, str]] = Counter()  # envelopes due later, per link
        self._wake: anyio.Event | None = None  # made in the loop, by the delivery task
        self._group: TaskGroup | None = None
        self._closed = False
        inner.on_dead_letter = self.dead_letter

    def link(self, sender: str, recipient: str) -> Link:
        """The behaviour of the link from ``sender`` to ``recipient``."""
        return self.links.get((sender, recipient), self.default)

    def register(self, name: str, deliver: Deliver) -> None:
        self.inner.register(name, deliver)

    def sent_bytes(self, sender: str) -> int:
        return self.inner.sent_bytes(sender)

    def unregister(self, name: str) -> None:
        self.inner.unregister(name)

    def send(self, envelope: Envelope) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        if envelope.sender in self.exempt or envelope.recipient in self.exempt:
            self.inner.send(envelope)
            return
        self.stats.sent += 1
        key = (envelope.sender, envelope.recipient)
        link = self.link(*key)
        delay = self._loss_delay(link) if link.drop else 0.0
        if delay is None:
            self._lose(key, envelope)
        elif link.instant and not delay and not self._pending[key]:
            self.inner.send(envelope)
        else:
            self._schedule(key, self._due_time(key, link, envelope, delay), envelope)

    async def __aenter__(self) -> EmulatedTransport:
        await self.inner.__aenter__()
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        self._group.start_soon(self._pump)
        return self

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._due.clear()
        self._pending.clear()
        if self._group is not None:
            self._group.cancel_scope.cancel()
            await self._group.__aexit__(None, None, None)
            self._group = None
        await self.inner.aclose()

    def _loss_delay(self, link: Link) -> float | None:
        """What losses add to an envelope's delay (retransmissions), or None: lost for good."""
        losses = 0
        while self._rng.random() < link.drop:
            if link.loss == "drop" or losses == MAX_RETRANSMITS:
                return None
            losses += 1
        self.stats.retransmitted += losses
        return link.rto * (2**losses - 1)

    def _due_time(self, key: tuple[str, str], link: Link, envelope: Envelope,
                  delay: float) -> float:
        """When the envelope arrives: after the link is free, its transmission, the link's
        delay and ``delay`` (retransmissions)."""
        now = anyio.current_time()
        free_at, last_due = self._link_free.get(key, (now, now))
        sent_at = max(now, free_at)
        if link.bandwidth != math.inf:
            sent_at += frame_size(encode(envelope)) / link.bandwidth
        due = sent_at + link.latency + delay + link.jitter * self._rng.random()
        due = max(due, last_due)  # a link keeps its order, whatever the jitter
        self._link_free[key] = (sent_at, due)
        return due

    def _schedule(self, key: tuple[str, str], due: float, envelope: Envelope) -> None:
        self.stats.delayed += 1
        self._pending[key] += 1  # an instant send on this link now would overtake it
        earliest = self._due[0][0] if self._due else math.inf
        heapq.heappush(self._due, (due, next(self._order), envelope))
        if due < earliest and self._wake is not None:
            self._wake.set()

    def _lose(self, key: tuple[str, str], envelope: Envelope) -> None:
        self.stats.dropped += 1
        self.stats.dropped_by_link[key] = self.stats.dropped_by_link.get(key, 0) + 1
        logger.debug("dropped %s %r from %r to %r (iteration %s)", envelope.kind,
                     envelope.topic, envelope.sender, envelope.recipient, envelope.iteration)

    async def _pump(self) -> None:
        """Deliver each envelope when it is due; sleep until the next, or until a send."""
        while True:
            delay = self._due[0][0] - anyio.current_time() if self._due else math.inf
            if delay > 0:
                self._wake = anyio.Event()
                with anyio.move_on_after(delay):
                    await self._wake.wait()
                continue
            _, _, envelope = heapq.heappop(self._due)
            self._pending[envelope.sender, envelope.recipient] -= 1
            self._forward(envelope)

    def _forward(self, envelope: Envelope) -> None:
        try:
            self.inner.send(envelope)
        except Exception as exc:  # no sender is left to raise to: report it as undeliverable
            self.dead_letter(envelope, f"delivery failed after emulation: {exc!r}")
