"""Connections for the TCP transport: listening, dialing, TLS, the handshake, recovery.

``Connector`` is the part of ``TcpTransport`` that turns sockets into ``Link``s
and wins them back: it accepts (with a handshake timeout, so a silent peer is
dropped, and at most ``max_pending`` handshakes at once per remote host), dials
with retry and backoff while peers start in any order, has the loop do TLS (see
``_protocol``), runs the handshake of ``_handshake``, and after a broken link
redials or waits for the peer, then gives it up. Plain TCP without a join
secret accepts loopback peers only. Every connection it makes is tracked until
it closes, so that closing the transport leaves none open; a watchdog drops
those whose unfinished frame stalled (``ReadLimits``). What happens on an
established link is ``tcp``'s.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections import Counter
from collections.abc import Callable
from typing import Final

import anyio
from anyio.abc import TaskGroup

from . import _handshake as hs
from ._envelope import Envelope
from ._guard import Guard, OverLimit, ReadLimits, is_loopback
from ._link import Link, Peer
from ._protocol import FrameProtocol, adopt, dial, format_address
from .abc import DecodeError

logger = logging.getLogger("peerflow.transport.tcp")

FAILURES: Final = (OSError, TimeoutError, ssl.SSLError, anyio.EndOfStream, anyio.IncompleteRead,
                   anyio.BrokenResourceError, anyio.ClosedResourceError, DecodeError, OverLimit)
"""What a connection may fail with: each ends that connection only."""


def split_address(address: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` too).

    Raises:
        ValueError: no port, or the port is not a number in 0..65535.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"address {address!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


class Connector:
    """Accepting, dialing and recovering for ``TcpTransport`` (a mixin: it uses the
    transport's state)."""

    name: str
    run_id: str | None
    address: str | None
    handshake_timeout: float
    reconnect_window: float
    secret: str | None
    guard: Guard
    max_pending: int
    _limits: ReadLimits
    on_peer_lost: Callable[[str, str], None] | None
    dead_letter: Callable[[Envelope, str], None]
    _peers: dict[str, Peer]
    _joiner: Callable[[str], bool]
    _group: TaskGroup | None
    _closing: bool
    _server_context: ssl.SSLContext | None
    _client_context: ssl.SSLContext | None
    _connections: set[FrameProtocol]
    _pending: Counter[str]

    async def _serve(self, link: Link) -> None:
        raise NotImplementedError

    async def _accept_loop(self, listener: socket.socket) -> None:
        assert self._group is not None
        while True:
            try:
                await anyio.wait_readable(listener)
            except (anyio.ClosedResourceError, ValueError):  # ValueError: closed before waiting
                return
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:  # e.g. out of file descriptors: keep serving
                logger.warning("%s: accept failed: %s", self.name, exc)
                await anyio.sleep(0.1)
                continue
            self._group.start_soon(self._accept, sock)

    async def _accept(self, sock: socket.socket) -> None:
        remote = _remote(sock)
        host = remote.rpartition(":")[0]
        if refusal := self._refusal(host):
            sock.close()
            logger.warning("%s: dropped incoming connection from %s: %s", self.name, remote,
                           refusal)
            return
        conn: FrameProtocol | None = None
        hello: hs.Hello | None = None
        self._pending[host] += 1
        try:
            with anyio.fail_after(self.handshake_timeout):
                conn = self._track(await adopt(sock, self._server_context, self._limits))
                hello, run = await self._admit(conn)
        except (*FAILURES, hs.HandshakeError) as exc:
            if not self._closing:
                logger.warning("%s: dropped incoming connection from %s: %s", self.name,
                               remote, describe(exc))
        finally:
            self._pending[host] -= 1
            if not self._pending[host]:
                del self._pending[host]
            if hello is None and conn is not None:  # failed, or cancelled while closing
                conn.close()  # after any refusal written
        if hello is not None and conn is not None:
            await self._serve(Link(conn, hello.node, run, dialer=hello.node))

    def _refusal(self, host: str) -> str | None:
        """Why a connection from ``host`` is refused before its handshake, if it is."""
        if self._server_context is None and self.secret is None and not is_loopback(host):
            return "plain TCP without a join secret accepts loopback peers only"
        if self._pending[host] >= self.max_pending:
            return f"{self.max_pending} handshakes from {host} are under way already"
        return None

    async def _admit(self, conn: FrameProtocol) -> tuple[hs.Hello, str]:
        """Read the dialer's hello; answer welcome or refuse (then raise)."""
        hello = hs.parse_hello(await _read_handshake(conn))
        gate = hs.Gate(self.run_id, self.secret, self._joiner, self.guard.connects,
                       self._connected)
        try:
            run = hs.admit(hello, gate, conn.peer_identity())
        except hs.HandshakeError as exc:
            conn.write([hs.refuse(str(exc), retry=exc.retry)])
            raise
        conn.write([hs.welcome(self.name, run)])
        return hello, run

    def _connected(self, name: str) -> bool:
        peer = self._peers.get(name)
        return peer is not None and bool(peer.links)

    async def watch_stalls(self) -> None:
        """Drop connections whose unfinished frame stalled (see ``ReadLimits``)."""
        while True:
            await anyio.sleep(min(1.0, self._limits.stall_grace / 4))
            now = anyio.current_time()
            for conn in list(self._connections):
                if (why := conn.stalled(now)) is not None:
                    conn.fail(OverLimit(why))

    async def _dial(self, peer: Peer, window: float) -> None:
        """Dial until connected, refused or out of time; then serve the connection."""
        deadline = anyio.current_time() + window
        delay, reason = 0.02, "not tried"
        try:
            while peer.link is None and not self._closing:
                try:
                    link = await self._connect(peer, deadline)
                except hs.HandshakeError as exc:
                    if not exc.retry:
                        return self._lose(peer, str(exc))
                    reason = str(exc)
                except FAILURES as exc:
                    if _permanent(exc):
                        return self._lose(peer, describe(exc))
                    reason = describe(exc)
                else:
                    peer.dialing = False
                    return await self._serve(link)
                if anyio.current_time() + delay > deadline:
                    return self._lose(peer, f"no connection to {peer.route} within "
                                            f"{window:g}s: {reason}")
                await anyio.sleep(delay)
                delay = min(2 * delay, 0.5)
        finally:
            peer.dialing = False

    async def _connect(self, peer: Peer, deadline: float) -> Link:
        assert peer.route is not None
        limit = max(0.05, min(self.handshake_timeout, deadline - anyio.current_time()))
        with anyio.fail_after(limit):
            conn = self._track(await dial(*split_address(peer.route), self._client_context,
                                          self._limits))
            try:
                conn.write([hs.hello(self.name, self.run_id, self.address, self.secret)])
                node, run = hs.parse_answer(await _read_handshake(conn))
                self._check_answer(peer.name, node, run, conn.peer_identity())
            except BaseException:
                conn.abort()
                raise
        self.run_id = run
        return Link(conn, peer.name, run, dialer=self.name)

    def _track(self, conn: FrameProtocol) -> FrameProtocol:
        self._connections.add(conn)
        conn.closed.add_done_callback(lambda _: self._connections.discard(conn))
        return conn

    def _check_answer(self, expected: str, node: str, run: str, identity: str | None) -> None:
        if node != expected or (identity is not None and identity != node):
            raise hs.HandshakeError(f"dialed {expected!r} but reached {node!r}"
                                    + (f" (certificate {identity!r})" if identity else ""))
        if self.run_id is not None and run != self.run_id:
            raise hs.HandshakeError(f"peer {node!r} is in run {run!r}, not {self.run_id!r}")

    # -- losing peers --------------------------------------------------------------
    def _recover(self, peer: Peer, link: Link) -> None:
        if self._closing or peer.link is not None:
            return
        if link.failure is None and not peer.queue:
            if peer.idle:
                self._peers.pop(peer.name, None)
            return
        if not (peer.watched or peer.queue or peer.route):
            self._peers.pop(peer.name, None)
            return
        reason = link.failure or f"{peer.name!r} closed the connection with data pending"
        if peer.route and not peer.dialing and self._group is not None:
            peer.dialing = True
            self._group.start_soon(self._dial, peer, self.reconnect_window)
        elif self._group is not None:
            self._group.start_soon(self._await_return, peer, reason)

    async def _await_return(self, peer: Peer, reason: str) -> None:
        await anyio.sleep(self.reconnect_window)
        if peer.link is None and not self._closing:
            self._lose(peer, f"connection broken and not restored within "
                             f"{self.reconnect_window:g}s: {reason}")

    def _lose(self, peer: Peer, reason: str) -> None:
        if self._closing or peer.lost is not None:
            return
        peer.lost = reason
        logger.warning("%s: lost peer %r: %s", self.name, peer.name, reason)
        for envelope in peer.drop_queue():
            self.dead_letter(envelope, f"peer {peer.name!r} is lost: {reason}")
        if peer.watched and self.on_peer_lost is not None:
            self.on_peer_lost(peer.name, reason)


async def _read_handshake(conn: FrameProtocol) -> bytearray:
    prefix = await conn.receive_exactly(4)
    size = int.from_bytes(prefix, "little")
    hs.check_size(size)
    return await conn.receive_exactly(size)


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(512)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _permanent(exc: BaseException) -> bool:
    """A TLS verification failure will not pass on retry."""
    return isinstance(exc, ssl.SSLCertVerificationError) or (
        isinstance(exc, ssl.SSLError) and "ALERT" in str(exc.reason or ""))


def _remote(sock: socket.socket) -> str:
    try:
        return format_address(sock.getpeername())
    except OSError:
        return "?"


def describe(exc: BaseException) -> str:
    if isinstance(exc, anyio.EndOfStream | anyio.IncompleteRead):
        return "the peer closed the connection without goodbye"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
