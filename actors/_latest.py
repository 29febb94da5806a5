"""Latest-value mailbox: what an asynchronous node knows of each in-neighbour.

Beside the per-iteration mailbox (``_mailbox``): an asynchronous node never waits
for one iteration of everyone; it reads the newest value each in-neighbour sent,
with its age. ``put`` is the plain call of the transport's delivery path; a value
older than one already held or taken is stale and dropped, so memory holds at most
one value per sender. A scheduled run (``_schedule``) must read exactly the value
the schedule makes visible, not the newest that happens to have come: with
``keep_pending`` the mailbox keeps every value newer than the one taken, up to
``max_held`` per sender (beyond it the sender is in breach, as in ``_mailbox``).

Each body is ``[final, value]``: ``final`` marks a sender's last value, after which
its silence is no sign of failure. Liveness: ``news`` raises ``SyncTimeout`` when no
live in-neighbour (one that has not sent its final value) has been heard from for
the sync timeout; ``waiting_on`` names the live ones silent for over half of it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

from ._errors import SyncTimeout
from ._mailbox import MailboxBase

logger = logging.getLogger("peerflow.mailbox")


class Latest(NamedTuple):
    """One in-neighbour's value as a node reads it.

    Attributes:
        value: what the neighbour sent.
        tick: the neighbour's own tick when it sent it.
        age: seconds since it arrived.
    """

    value: Any
    tick: int
    age: float


class LatestMailbox(MailboxBase):
    """Keeps the newest value of each in-neighbour.

    Args:
        owner: name of the owning node, for log lines and errors.
        senders: the only names whose values are accepted (the in-neighbours).
        keep_pending: keep every value newer than the one taken (scheduled runs).
        max_held: how many values one sender may have waiting with ``keep_pending``.
    """

    step = "tick"

    def __init__(self, owner: str, senders: frozenset[str] | set[str], *,
                 keep_pending: bool = False, max_held: int = 1000) -> None:
        if max_held < 1:
            raise ValueError(f"max_held must be >= 1, got {max_held}")
        self.owner = owner
        self.senders = frozenset(senders)
        self.keep_pending = keep_pending
        self.max_held = max_held
        self.dropped = 0
        self.stale = 0
        self._held: dict[str, dict[int, tuple[Any, float]]] = {s: {} for s in self.senders}
        self._taken = dict.fromkeys(self.senders, -1)
        self._final: set[str] = set()
        self._heard = dict.fromkeys(self.senders, 0.0)
        self._waiter: asyncio.Future[None] | None = None
        self._breach: str | None = None
        self._tick = -1  # the owner's tick, for waiting_on
        self._timeout = 0.0

    def start(self, timeout: float) -> None:
        """Start the liveness clock: every sender counts as heard now."""
        now = asyncio.get_running_loop().time()
        self._heard = dict.fromkeys(self.senders, now)
        self._timeout = timeout

    def put(self, sender: str, tick: int, body: Any) -> None:
        """Accept ``sender``'s ``[final, value]`` of ``tick``; never blocks, never raises."""
        if sender not in self.senders:
            return self._drop(sender, tick, "it is not an in-neighbour")
        if not (isinstance(body, list | tuple) and len(body) == 2):
            return self._drop(sender, tick, "its body is not [final, value]")
        held = self._held[sender]
        if tick <= self._taken[sender] or tick in held or (
                not self.keep_pending and held and tick < max(held)):
            self.stale += 1
            return None
        if not self.keep_pending:
            held.clear()
        elif len(held) >= self.max_held:
            return self._mark_breach(sender, tick)
        held[tick] = (body[1], asyncio.get_running_loop().time())
        self._heard[sender] = held[tick][1]
        if body[0]:
            self._final.add(sender)
        self._wake()

    # -- reading -----------------------------------------------------------------------------
    def take_latest(self) -> dict[str, Latest]:
        """The newest value of every sender that sent one since the last take."""
        now = asyncio.get_running_loop().time()
        news = {}
        for sender, held in self._held.items():
            if held:
                tick = max(held)
                value, at = held.pop(tick)
                held.clear()
                self._taken[sender] = tick
                news[sender] = Latest(value, tick, now - at)
        return news

    def take(self, sender: str, tick: int) -> Latest:
        """``sender``'s value of ``tick`` (held: see ``arrived``); older ones are discarded.

        Raises:
            KeyError: that value is not held.
        """
        held = self._held[sender]
        value, at = held.pop(tick)
        for old in [t for t in held if t < tick]:
            del held[old]
        self._taken[sender] = tick
        return Latest(value, tick, asyncio.get_running_loop().time() - at)

    def taken(self, sender: str) -> int:
        """The tick of ``sender``'s value taken last (-1: none)."""
        return self._taken[sender]

    def is_final(self, sender: str) -> bool:
        """Whether ``sender`` has sent its final value."""
        return sender in self._final

    def has_news(self) -> bool:
        """Whether some sender sent a value since the last take."""
        return any(self._held.values())

    # -- waiting -----------------------------------------------------------------------------
    async def news(self, tick: int, max_wait: float) -> bool:
        """Wait up to ``max_wait`` seconds for a value not taken yet; whether one came.

        Returns at once when every in-neighbour has sent its final value.

        Raises:
            SyncTimeout: no live in-neighbour was heard from for the sync timeout.
            MailboxBreach: a sender has too many values waiting.
        """
        self._tick = tick
        loop = asyncio.get_running_loop()
        until = loop.time() + max_wait
        while not self.has_news():
            live = self.senders - self._final
            if not live:
                return False
            last = max(self._heard[s] for s in live)
            if loop.time() >= last + self._timeout:
                raise SyncTimeout(f"node {self.owner!r} tick {tick}: heard from none of "
                                  f"{sorted(live)} for {self._timeout:g}s", sorted(live))
            if loop.time() >= until:
                return False
            await self._wait(min(until, last + self._timeout))
        return True

    async def arrived(self, tick: int, wanted: Mapping[str, int]) -> None:
        """Wait until each ``sender: tick`` of ``wanted`` is held (a scheduled run's read).

        Raises:
            SyncTimeout: some did not come within the sync timeout.
            MailboxBreach: a sender has too many values waiting.
        """
        self._tick = tick
        loop = asyncio.get_running_loop()
        until = loop.time() + self._timeout
        while missing := self._missing(wanted):
            if loop.time() >= until:
                raise SyncTimeout(f"node {self.owner!r} tick {tick}: no value from "
                                  f"{missing} within {self._timeout:g}s", missing)
            await self._wait(until)

    def _missing(self, wanted: Mapping[str, int]) -> list[str]:
        self._raise_on_breach()
        return sorted(s for s, t in wanted.items() if t not in self._held[s])

    async def _wait(self, until: float) -> None:
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_at(until, self._wake)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
        self._raise_on_breach()


    def waiting_on(self) -> tuple[int | None, list[str], bool]:
        """The owner's tick, the live in-neighbours silent for over half the sync
        timeout, and whether there are any (for tracing a stall)."""
        if self._tick < 0:
            return None, [], False
        now = asyncio.get_running_loop().time()
        silent = sorted(s for s in self.senders - self._final
                        if now - self._heard[s] > self._timeout / 2)
        return self._tick, silent, bool(silent)

    # -- refusals ----------------------------------------------------------------------------
    def _mark_breach(self, sender: str, tick: int) -> None:
        if self._breach is None:
            self._breach = (f"node {self.owner!r}: neighbour {sender!r} sent tick {tick} "
                            f"with {self.max_held} values already waiting")
            logger.error("%s", self._breach)
        self._wake()

