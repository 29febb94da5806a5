"""Accepting connections for the TCP transport: who gets as far as a ``Link``.

``Acceptor`` is the part of ``Connector`` that takes incoming sockets: plain
TCP without a join secret accepts loopback peers only, and at most
``max_pending`` handshakes run at once per remote host (more are closed at once);
each must complete within ``handshake_timeout``. The hello is checked by
``_handshake.admit`` against the run, the secret, the guard and the names
connected already. A watchdog drops connections whose unfinished frame stalled
(``ReadLimits``).
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import anyio
from anyio.abc import TaskGroup

from . import _handshake as hs
from ._address import format_sockaddr
from ._guard import OverLimit, ReadLimits, is_loopback
from ._link import Changes, Link, Peer
from ._protocol import FrameProtocol, adopt
from .abc import DecodeError, NetworkTransport

logger = logging.getLogger("peerflow.transport.tcp")

FAILURES: Final = (OSError, TimeoutError, ssl.SSLError, anyio.EndOfStream, anyio.IncompleteRead,
                   anyio.BrokenResourceError, anyio.ClosedResourceError, DecodeError, OverLimit)
"""What a connection may fail with: each ends that connection only."""


@dataclass(frozen=True, slots=True)
class Settings:
    """How connections are made and admitted (see ``TcpTransport``'s arguments)."""

    connect_timeout: float
    handshake_timeout: float
    secret: str | None
    max_pending: int
    limits: ReadLimits
    joiner: Callable[[str], bool]
    server_context: ssl.SSLContext | None
    client_context: ssl.SSLContext | None


Serve = Callable[[Link], Awaitable[None]]
"""Carries an established link until it closes (the transport's part)."""


class Acceptor:
    """Accepting: the part of ``Connector`` that takes incoming sockets.

    Args:
        host: the transport it connects for; read through its public interface.
        settings: how connections are made and admitted.
        serve: carries each established link.
    """

    def __init__(self, host: NetworkTransport, settings: Settings, serve: Serve) -> None:
        self.host, self.settings, self._serve = host, settings, serve
        self.peers: dict[str, Peer] = {}
        self.tracked: set[FrameProtocol] = set()
        self.changes = Changes()
        self.group: TaskGroup | None = None
        self.closing = False
        self._pending: Counter[str] = Counter()

    def _track(self, conn: FrameProtocol) -> FrameProtocol:
        """Keep ``conn`` in ``tracked`` until it closes."""
        self.tracked.add(conn)
        conn.closed.add_done_callback(lambda _: self._untrack(conn))
        return conn

    def _untrack(self, conn: FrameProtocol) -> None:
        self.tracked.discard(conn)
        self.changes.notify()

    async def accept_loop(self, listener: socket.socket) -> None:
        assert self.group is not None
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
                logger.warning("%s: accept failed: %s", self.host.name, exc)
                await anyio.sleep(0.1)
                continue
            self.group.start_soon(self._accept, sock)

    async def _accept(self, sock: socket.socket) -> None:
        host, remote = _remote(sock)
        if refusal := self._refusal(host):
            sock.close()
            logger.warning("%s: dropped incoming connection from %s: %s", self.host.name, remote,
                           refusal)
            return
        conn: FrameProtocol | None = None
        hello: hs.Hello | None = None
        self._pending[host] += 1
        try:
            with anyio.fail_after(self.settings.handshake_timeout):
                conn = self._track(await adopt(sock, self.settings.server_context,
                                               self.settings.limits))
                hello, run = await self._admit(conn)
        except (*FAILURES, hs.HandshakeError) as exc:
            if not self.closing:
                logger.warning("%s: dropped incoming connection from %s: %s", self.host.name,
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
        settings = self.settings
        if settings.server_context is None and settings.secret is None and not is_loopback(host):
            return "plain TCP without a join secret accepts loopback peers only"
        if self._pending[host] >= self.settings.max_pending:
            return f"{self.settings.max_pending} handshakes from {host} are under way already"
        return None

    async def _admit(self, conn: FrameProtocol) -> tuple[hs.Hello, str]:
        """Read the dialer's hello; answer welcome or refuse (then raise)."""
        hello = hs.Hello.parse(await read_handshake(conn))
        gate = hs.Gate(self.host.run_id, self.settings.secret, self.settings.joiner,
                       self.host.guard.connects, self._connected)
        try:
            run = hs.admit(hello, gate, conn.peer_identity())
        except hs.HandshakeError as exc:
            conn.write([exc.frame()])
            raise
        conn.write([hs.Welcome(self.host.name, run).frame()])
        return hello, run

    def _connected(self, name: str) -> bool:
        peer = self.peers.get(name)
        return peer is not None and bool(peer.links)

    async def watch_stalls(self) -> None:
        """Drop connections whose unfinished frame stalled (see ``ReadLimits``)."""
        while True:
            await anyio.sleep(min(1.0, self.settings.limits.stall_grace / 4))
            now = anyio.current_time()
            for conn in list(self.tracked):
                if (why := conn.stalled(now)) is not None:
                    conn.fail(OverLimit(why))


async def read_handshake(conn: FrameProtocol) -> bytearray:
    """Read one handshake frame, and not a byte past it."""
    prefix = await conn.receive_exactly(4)
    size = int.from_bytes(prefix, "little")
    hs.check_size(size)
    return await conn.receive_exactly(size)


def _remote(sock: socket.socket) -> tuple[str, str]:
    """The peer's host and ``host:port`` (both "?" once it is gone)."""
    try:
        address = sock.getpeername()
    except OSError:
        return "?", "?"
    return str(address[0]), format_sockaddr(address)


def describe(exc: BaseException) -> str:
    if isinstance(exc, anyio.EndOfStream | anyio.IncompleteRead):
        return "the peer closed the connection without goodbye"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
