"""The TCP transport (optionally mutual TLS): one process, one name, one listener.

- Wire: u32-length-prefixed frames (``_frames``); a frame is one codec envelope;
  a zero-length frame is a *goodbye*: "I send nothing more on this connection".
- Connections: one per peer pair, reused both ways, one live one per name; each is bound by a
  handshake (``_handshake``, ``_accept``) to a peer name and a run. With TLS a peer's name is
  its certificate's; without, its hello's, and only a hello with the join ``secret`` gets in (no
  secret: loopback only). An envelope whose sender that name does not carry (itself,
  ``name/...``, its ``carriers``), or that the ``guard`` refuses from it, is dropped and logged.
- Data plane: asyncio's loop API directly (``_protocol``), not anyio streams: the runtime runs
  on anyio's asyncio backend (uvloop included), and this is what takes a message through without
  a task wake or a socket re-registration. anyio still owns the tasks (accepting, dialing, one
  per connection awaiting its end) and the timeouts.
- Sending never awaits: ``send`` encodes and writes the frame to the peer's connection at once,
  one system call (a node's iteration sends a peer one envelope; a shard sends it many: with
  ``coalesce`` the frames of one event-loop pass go in one write). While there is no connection,
  or its transport paused writing, frames wait in the peer's queue, written in gathered writes
  later.
- Backpressure: a slow reader fills the transport's buffer (TCP flow control), then the peer's
  queue. A ``tell`` that would push that backlog over ``max_queued`` bytes raises
  ``PeerCongested`` (an executor turns that into a panic); control envelopes (asks, replies,
  panics, aborts, all small) always queue.
- Faults: a frame that does not decode, or an unfinished one over the ``ReadLimits``, drops its
  connection (logged), nothing else. A connection that breaks without goodbye is redialed (if
  the peer's address is known) or awaited for ``reconnect_window`` seconds; then the peer is
  lost: its queue becomes dead letters and ``on_peer_lost(name, reason)`` is called for watched
  peers."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Collection, Mapping
from functools import partial
from typing import Any, Final

import anyio
from anyio.abc import TaskGroup

from ._accept import FAILURES, Settings, describe
from ._address import join_address, split_address
from ._codec import DEFAULT_MAX_FRAME, decode, encode, frame_size
from ._connect import Connector, listening_socket
from ._envelope import Envelope
from ._frames import Body, framed
from ._guard import DEFAULT_MIN_RATE, DEFAULT_STALL_GRACE, OPEN, Guard, ReadLimits
from ._link import Link, Peer
from .abc import Deliver, NetworkTransport, PeerLost, TransportError
from .tls import TlsConfig

logger = logging.getLogger("peerflow.transport.tcp")

DEFAULT_MAX_QUEUED: Final = 256 << 20


class PeerCongested(TransportError):
    """A peer's send queue is over its byte bound: it reads slower than we send."""


class FrameTooLarge(TransportError):
    """An envelope encodes to a frame over the transport's ``max_frame``."""


class TcpTransport(NetworkTransport):
    """Carries envelopes between processes (or between transports of one process).

    Args:
        name: this side's name; local endpoints are ``name`` and ``name/...``.
        listen: ``host:port`` to accept connections on (port 0: any), or None.
        run_id: the run connections are bound to; None adopts the first dialed peer's.
        routes: ``{peer name: "host:port"}`` to dial.
        tls: this side's TLS kit; None for plain TCP.
        joiners: names that may connect without knowing the run (see ``_handshake``).
        max_frame: largest frame sent or received, checked before allocating.
        max_queued: per-peer bound on queued ``tell`` bytes (see module doc).
        connect_timeout: seconds to keep dialing a peer that is not up yet.
        reconnect_window: seconds to win back a broken connection before the peer is lost.
        handshake_timeout: seconds an accepted connection has to complete its handshake.
        secret: the run's join secret: dialing, sent in the hello; accepting, required
            of every hello. None: none sent, and without TLS only loopback peers get in.
        max_pending: handshakes under way at once from one remote host.
        max_buffered: bytes of unfinished frames across all connections (default:
            4 frames of ``max_frame``); see ``ReadLimits`` for this and the next two.
        stall_grace: seconds an unfinished frame may take before it must keep up.
        min_rate: bytes a second an unfinished frame must average after the grace.
        carriers: ``{endpoint: transport name}`` for endpoints not named after the transport
            that carries them (a shard's nodes); others: the part of the name before "/".
        coalesce: gather the frames one event-loop pass sends a peer into one write.
    """

    def __init__(self, name: str, listen: str | None = "127.0.0.1:0", *,
                 run_id: str | None = None, routes: Mapping[str, str] | None = None,
                 tls: TlsConfig | None = None,
                 joiners: Collection[str] | Callable[[str], bool] = (),
                 max_frame: int = DEFAULT_MAX_FRAME, max_queued: int = DEFAULT_MAX_QUEUED,
                 connect_timeout: float = 30.0, reconnect_window: float = 2.0,
                 handshake_timeout: float = 10.0, close_timeout: float = 2.0,
                 secret: str | None = None, max_pending: int = 64,
                 max_buffered: int | None = None, stall_grace: float = DEFAULT_STALL_GRACE,
                 min_rate: float = DEFAULT_MIN_RATE, carriers: Mapping[str, str] | None = None,
                 coalesce: bool = False) -> None:
        if "/" in name or not name:
            raise ValueError(f"transport name {name!r} must be non-empty without '/'")
        self.name, self.run_id, self.tls, self.secret = name, run_id, tls, secret
        self.max_frame, self.max_queued, self.coalesce = max_frame, max_queued, coalesce
        self.reconnect_window, self.close_timeout = reconnect_window, close_timeout
        self.guard: Guard = OPEN
        self.on_peer_lost: PeerLost | None = None
        self.address: str | None = None
        limits = ReadLimits(4 * max_frame if max_buffered is None else max_buffered,
                            stall_grace, min_rate)
        self._net = Connector(self, Settings(
            connect_timeout, handshake_timeout, secret, max_pending, limits,
            joiners if callable(joiners) else frozenset(joiners).__contains__,
            tls.server_context() if tls else None, tls.client_context() if tls else None),
            self._serve)
        self._listen = listen
        self._endpoints: dict[str, Deliver] = {}
        self._carriers: Mapping[str, str] = carriers or {}
        self._listener: socket.socket | None = None
        self._outer: TaskGroup | None = None
        self._closed = False
        for peer, address in (routes or {}).items():
            self.add_route(peer, address)

    @property
    def scheme(self) -> str:
        return "tls" if self.tls else "tcp"

    # -- lifecycle ------------------------------------------------------------
    async def __aenter__(self) -> TcpTransport:
        self._outer = anyio.create_task_group()
        await self._outer.__aenter__()
        group = self._net.group = await self._outer.start(self._net.host_group)
        group.start_soon(self._net.watch_stalls)
        if self._listen is not None:
            self._listener = listening_socket(*split_address(self._listen))
            self.address = join_address(*self._listener.getsockname()[:2])
            group.start_soon(self._net.accept_loop, self._listener)
        return self

    async def aclose(self) -> None:
        """Flush queues, say goodbye on every connection, then close; idempotent."""
        if self._closed:
            return
        self._net.closing = True
        for peer in list(self._net.peers.values()):
            self._net.flush(peer)  # then goodbye on every link
        await self._wait_until(lambda: not any(peer.links for peer in self._net.peers.values()))
        self._closed = True
        if self._listener is not None:
            anyio.notify_closing(self._listener)
            self._listener.close()
        for conn in list(self._net.tracked):
            conn.abort()
        await self._wait_until(lambda: not self._net.tracked)
        self._endpoints.clear()
        if self._net.group is not None:
            self._net.group.cancel_scope.cancel()

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self.aclose()
        finally:  # also when cancelled: a task group left entered breaks every outer scope
            if self._outer is not None:  # leaving the task group must happen here, in order
                await self._outer.__aexit__(None, None, None)
                self._outer = None

    async def _wait_until(self, condition: Callable[[], bool]) -> None:
        with anyio.move_on_after(self.close_timeout):
            await self._net.changes.until(condition)

    # -- endpoints ---------------------------------------------------------------
    def register(self, name: str, deliver: Deliver) -> None:
        if name in self._endpoints:
            raise ValueError(f"endpoint {name!r} is already registered")
        if self.carrier(name) != self.name:
            raise ValueError(f"endpoint {name!r} is not carried by {self.name!r}")
        self._endpoints[name] = deliver

    def unregister(self, name: str) -> None:
        self._endpoints.pop(name, None)

    def carrier(self, endpoint: str) -> str:
        """The name of the transport that carries ``endpoint``."""
        return self._carriers.get(root := endpoint.partition("/")[0], root)

    # -- peers (the connector's) -------------------------------------------------
    def add_route(self, peer: str, address: str, *, watch: bool = False) -> None:
        self._net.add_route(peer, address, watch=watch)

    def watch(self, peer: str) -> None:
        self._net.watch(peer)

    async def connect(self, peer: str) -> None:
        await self._net.connect(peer)

    def connections(self) -> list[dict[str, Any]]:
        return self._net.connections()

    def peer_address(self, peer: str) -> str | None:
        return self._net.peer_address(peer)

    # -- sending ---------------------------------------------------------------
    def send(self, envelope: Envelope) -> None:
        if self._net.closing:
            raise anyio.ClosedResourceError
        deliver = self._endpoints.get(envelope.recipient)
        if deliver is not None:
            deliver(envelope)
            return
        name = self.carrier(envelope.recipient)
        peer = self._net.peers.get(name)
        if name == self.name or peer is None or (peer.link is None and peer.route is None):
            self.dead_letter(envelope, f"no endpoint or route for {envelope.recipient!r}")
        elif peer.lost is not None:
            self.dead_letter(envelope, f"peer {name!r} is lost: {peer.lost}")
        else:
            self._enqueue(peer, envelope)

    def _enqueue(self, peer: Peer, envelope: Envelope) -> None:
        buffers = encode(envelope)
        size = frame_size(buffers)
        self.count_sent(envelope.sender, size + 4)
        link = peer.link
        if size <= self.max_frame and link is not None and not peer.queue and link.writable \
                and not self.coalesce:
            link.conn.write(framed(buffers, size))  # the common case: nothing waits
            return
        problem: TransportError | None = None
        if size > self.max_frame:
            problem = FrameTooLarge(f"envelope {envelope.topic!r} to {envelope.recipient!r} is a "
                                    f"{size}-byte frame, over the limit of {self.max_frame} bytes")
        elif envelope.kind == "tell" and (backlog := peer.backlog) and \
                backlog + size > self.max_queued:
            problem = PeerCongested(f"peer {peer.name!r} is congested: {backlog} bytes "
                                    f"queued, bound {self.max_queued}")
        if problem is not None:
            if envelope.kind == "tell":
                raise problem
            self.dead_letter(envelope, str(problem))
            return
        peer.enqueue(envelope, framed(buffers, size), size + 4)
        (self._net.flush_soon if self.coalesce else self._net.flush)(peer)
        self._net.ensure_dialing(peer)

    # -- connections -------------------------------------------------------------
    async def _serve(self, link: Link) -> None:
        """Carry one connection until it closes (goodbyes or failure); then recover."""
        peer = self._net.peer(link.peer)
        link.conn.start(partial(self._on_frame, link), partial(self._net.flush, peer),
                        self.max_frame)
        peer.attach(link, self.name)
        self._net.changes.notify()
        self._net.flush(peer)
        try:
            await link.conn.wait_closed()
            if not link.goodbye_received:
                raise anyio.EndOfStream
        except Exception as exc:  # whatever a peer sends, only its connection ends
            link.failure = describe(exc)
            if not self._net.closing:
                logger.warning("%s: connection with %r (%s) dropped: %s", self.name, link.peer,
                               link.conn.remote, link.failure,
                               exc_info=None if isinstance(exc, FAILURES) else exc)
        finally:
            link.conn.abort()
            peer.detach(link)
            self._net.changes.notify()
        self._net.recover(peer, link)

    def _on_frame(self, link: Link, body: Body) -> None:
        """Deliver one frame's envelope (an empty frame is a goodbye).

        Raises:
            DecodeError: the frame does not decode (its connection is dropped).
        """
        if not body:
            link.hear_goodbye()
            return
        envelope = decode(body, max_size=self.max_frame)
        if self.carrier(envelope.sender) != link.peer or envelope.run != link.run:
            logger.warning("%s: dropped %s %r from %r on the connection of %r (run %r): "
                           "sender or run does not match", self.name, envelope.kind,
                           envelope.topic, envelope.sender, link.peer, envelope.run)
            return
        if (refusal := self.guard.sends(link.peer, envelope)) is not None:
            logger.warning("%s: dropped %s %r from %r to %r: %s", self.name, envelope.kind,
                           envelope.topic, envelope.sender, envelope.recipient, refusal)
            return
        deliver = self._endpoints.get(envelope.recipient)
        if deliver is None:
            self.dead_letter(envelope, f"no endpoint named {envelope.recipient!r}")
            return
        try:
            deliver(envelope)
        except anyio.ClosedResourceError:  # the endpoint closed before it unregistered
            self.dead_letter(envelope, f"endpoint {envelope.recipient!r} is closed")
        except Exception as exc:  # an endpoint's bug must not cost the connection
            logger.error("%s: delivering %r to %r failed: %r", self.name, envelope.topic,
                         envelope.recipient, exc)
