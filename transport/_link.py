"""Per-peer state of the TCP transport: the send queue and the connections (links).

A ``Peer`` is a remote process by name. Its queue belongs to the peer, not to a
connection: it holds what could not be written yet (no link, or the link's
transport paused writing), and whichever link is current flushes it in gathered
writes of about ``FLUSH_BYTES`` each, until the transport pauses again: bounded
writes keep a TLS sender encrypting while the kernel still has bytes to send,
instead of encrypting the whole backlog while the receiver waits. At most one
link is current; if both sides dial at once, both keep the link dialed by the
smaller name and retire the other with a goodbye.

A goodbye is a zero-length frame: "I send nothing more on this link". Each side
says it once per link; the link closes once both have said it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import anyio

from ._envelope import Envelope
from ._frames import frame_prefix
from ._protocol import Buffer, FrameProtocol

GOODBYE: Final = frame_prefix(0)
FLUSH_BYTES: Final = 1 << 20


@dataclass(eq=False)
class Link:
    """One established connection, bound by its handshake to a peer and a run.

    Attributes:
        conn: the connection.
        peer: the name the handshake bound the connection to.
        run: the run the connection belongs to.
        dialer: the name of the side that dialed.
        goodbye_received: the peer said it will send nothing more here.
        goodbye_sent: we said so.
        failure: why the connection failed, if it did.
    """

    conn: FrameProtocol
    peer: str
    run: str
    dialer: str
    goodbye_received: bool = False
    goodbye_sent: bool = False
    failure: str | None = None

    @property
    def writable(self) -> bool:
        """Frames may be written now: no goodbye said, and the transport is not paused."""
        return not (self.goodbye_sent or self.conn.paused)

    def say_goodbye(self) -> None:
        """Say goodbye (once); close once both sides have said it."""
        if not self.goodbye_sent:
            self.goodbye_sent = True
            self.conn.write([GOODBYE])
        if self.goodbye_received:
            self.conn.close()

    def hear_goodbye(self) -> None:
        """The peer said goodbye: answer it, which closes the link."""
        self.goodbye_received = True
        self.say_goodbye()

    def describe(self, own_name: str) -> dict[str, object]:
        return {"peer": self.peer, "address": self.conn.remote, "tls": self.conn.tls,
                "direction": "out" if self.dialer == own_name else "in"}


@dataclass(eq=False)
class Peer:
    """A remote process: where to reach it, what waits to go to it, and its links.

    Attributes:
        name: the peer's name (the part of an endpoint name before any "/").
        route: its listening address, if known.
        watched: losing it matters (``on_peer_lost`` is called).
        awaited: how many ``connect`` calls wait for it (they raise if it is lost).
        lost: why it was given up, once it was.
    """

    name: str
    route: str | None = None
    watched: bool = False
    awaited: int = 0
    lost: str | None = None
    link: Link | None = None
    links: set[Link] = field(default_factory=set)
    dialing: bool = False
    flush_due: bool = False
    queue: deque[tuple[Envelope, list[Buffer], int]] = field(default_factory=deque)
    queued: int = 0

    @property
    def backlog(self) -> int:
        """Bytes on their way to the peer: queued here, or written but not yet sent."""
        return self.queued + (self.link.conn.buffered if self.link else 0)

    def enqueue(self, envelope: Envelope, buffers: list[Buffer], size: int) -> None:
        self.queue.append((envelope, buffers, size))
        self.queued += size

    def take(self, limit: int = FLUSH_BYTES) -> list[Buffer]:
        """Remove the oldest frames, about ``limit`` bytes (one at least); return their buffers."""
        buffers: list[Buffer] = []
        taken = 0
        while self.queue and taken < limit:
            _, frame, size = self.queue.popleft()
            buffers += frame
            taken += size
        self.queued -= taken
        return buffers

    def drop_queue(self) -> list[Envelope]:
        """Remove and return the queued envelopes (to dead-letter them)."""
        envelopes = [envelope for envelope, _, _ in self.queue]
        self.queue.clear()
        self.queued = 0
        return envelopes

    def attach(self, link: Link, own_name: str) -> None:
        """Add a link and make it current, unless the current one is the preferred
        link (dialed by the smaller name) and the new one is not; retire the other."""
        self.links.add(link)
        self.lost = None
        preferred = min(own_name, self.name)
        current = self.link
        if current is None or not (current.dialer == preferred != link.dialer):
            self.link = link
        for other in self.links:
            if other is not self.link:
                other.say_goodbye()

    def detach(self, link: Link) -> None:
        self.links.discard(link)
        if self.link is link:
            self.link = None

    @property
    def idle(self) -> bool:
        """Nothing binds us to this peer any more: it can be forgotten."""
        return not (self.links or self.queue or self.route or self.watched or self.dialing)


class Changes:
    """Wakes the tasks that wait for a condition on the links, when they change.

    Each wait gets a fresh ``anyio.Event`` that is set once and never cleared, so
    no change is missed between a check and the wait that follows it.
    """

    def __init__(self) -> None:
        self._event: anyio.Event | None = None

    def notify(self) -> None:
        """Something changed (a link came or went, a peer was lost): wake the waiters."""
        if self._event is not None:
            self._event.set()
            self._event = None

    async def until(self, condition: Callable[[], bool]) -> None:
        """Return once ``condition()`` is true, checking it after each change."""
        while not condition():
            if self._event is None:
                self._event = anyio.Event()
            await self._event.wait()
