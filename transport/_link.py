"""Per-peer state of the TCP transport: the send queue and the connections (links).

A ``Peer`` is a remote process by name. Its queue belongs to the peer, not to a
connection, so whichever link is current flushes it: everything queued since
the last write goes out in one gathered write. At most one link is current; if
both sides dial at once, both keep the link dialed by the smaller name and
retire the other (see ``TcpTransport`` for the goodbye that closes it cleanly).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio

from ._envelope import Envelope
from ._stream import Buffer, SocketStream


@dataclass(eq=False)
class Link:
    """One established connection, bound by its handshake to a peer and a run.

    Attributes:
        stream: the connected socket.
        peer: the name the handshake bound the connection to.
        run: the run the connection belongs to.
        dialer: the name of the side that dialed.
        goodbye_received: the peer said it will send nothing more here.
        failure: why the connection failed, if it did.
    """

    stream: SocketStream
    peer: str
    run: str
    dialer: str
    goodbye_received: bool = False
    failure: str | None = None

    def describe(self, own_name: str) -> dict[str, object]:
        return {"peer": self.peer, "address": self.stream.remote, "tls": self.stream.tls,
                "direction": "out" if self.dialer == own_name else "in"}


@dataclass(eq=False)
class Peer:
    """A remote process: where to reach it, what waits to go to it, and its links.

    Attributes:
        name: the peer's name (the part of an endpoint name before any "/").
        route: its listening address, if known.
        watched: losing it matters (``on_peer_lost`` is called).
        lost: why it was given up, once it was.
    """

    name: str
    route: str | None = None
    watched: bool = False
    lost: str | None = None
    link: Link | None = None
    links: set[Link] = field(default_factory=set)
    dialing: bool = False
    queue: list[tuple[Envelope, list[Buffer]]] = field(default_factory=list)
    queued: int = 0
    wake: anyio.Event = field(default_factory=anyio.Event)

    def enqueue(self, envelope: Envelope, buffers: list[Buffer], size: int) -> None:
        self.queue.append((envelope, buffers))
        self.queued += size
        self.wake.set()

    def take(self) -> list[Buffer]:
        """Remove and return every queued buffer, in order."""
        buffers = [b for _, frame in self.queue for b in frame]
        self.queue.clear()
        self.queued = 0
        return buffers

    def drop_queue(self) -> list[Envelope]:
        """Remove and return the queued envelopes (to dead-letter them)."""
        envelopes = [envelope for envelope, _ in self.queue]
        self.queue.clear()
        self.queued = 0
        return envelopes

    async def wait_for_work(self) -> None:
        """Sleep until something is queued or the links change."""
        if self.wake.is_set():
            self.wake = anyio.Event()
        await self.wake.wait()

    def attach(self, link: Link, own_name: str) -> None:
        """Add a link and make it current, unless the current one is the preferred
        link (dialed by the smaller name) and the new one is not."""
        self.links.add(link)
        self.lost = None
        preferred = min(own_name, self.name)
        current = self.link
        if current is None or not (current.dialer == preferred != link.dialer):
            self.link = link
        self.wake.set()  # a retired link's writer must see it is no longer current

    def detach(self, link: Link) -> None:
        self.links.discard(link)
        if self.link is link:
            self.link = None
        self.wake.set()

    @property
    def idle(self) -> bool:
        """Nothing binds us to this peer any more: it can be forgotten."""
        return not (self.links or self.queue or self.route or self.watched or self.dialing)
