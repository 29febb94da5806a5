"""Making connections for the TCP transport: listening, dialing, TLS and the handshake.

``Connector`` is the part of ``TcpTransport`` that turns sockets into ``Link``s:
it accepts (with a handshake timeout, so a silent peer is dropped), dials with
retry and backoff while peers start in any order, wraps TLS, and runs the
handshake of ``_handshake``. What happens on an established link is ``tcp``'s.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable
from typing import Final

import anyio
from anyio.abc import TaskGroup

from . import _handshake as hs
from ._link import Link, Peer
from ._stream import SocketStream, connect
from .abc import DecodeError

logger = logging.getLogger("peerflow.transport.tcp")

FAILURES: Final = (OSError, TimeoutError, ssl.SSLError, anyio.EndOfStream, anyio.IncompleteRead,
                   anyio.BrokenResourceError, anyio.ClosedResourceError, DecodeError)
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
    """Accepting and dialing for ``TcpTransport`` (a mixin: it uses the transport's state)."""

    name: str
    run_id: str | None
    address: str | None
    handshake_timeout: float
    _joiner: Callable[[str], bool]
    _group: TaskGroup | None
    _closing: bool
    _server_context: ssl.SSLContext | None
    _client_context: ssl.SSLContext | None

    async def _serve(self, link: Link) -> None:
        raise NotImplementedError

    def _lose(self, peer: Peer, reason: str) -> None:
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
        stream: SocketStream | None = None
        hello: hs.Hello | None = None
        try:
            with anyio.fail_after(self.handshake_timeout):
                stream = await self._secure(sock, server=True)
                hello, run = await self._admit(stream)
        except (*FAILURES, hs.HandshakeError) as exc:
            logger.warning("%s: dropped incoming connection from %s: %s", self.name, remote,
                           describe(exc))
        finally:
            if hello is None:  # failed, or cancelled while closing
                (stream or sock).close()
        if hello is not None and stream is not None:
            await self._serve(Link(stream, hello.node, run, dialer=hello.node))

    async def _admit(self, stream: SocketStream) -> tuple[hs.Hello, str]:
        """Read the dialer's hello; answer welcome or refuse (then raise)."""
        hello = hs.parse_hello(await _read_handshake(stream))
        try:
            run = hs.admit(hello, run=self.run_id, identity=stream.peer_identity(),
                           joiner=self._joiner)
        except hs.HandshakeError as exc:
            await stream.send_all([hs.refuse(str(exc), retry=exc.retry)])
            raise
        await stream.send_all([hs.welcome(self.name, run)])
        return hello, run

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
            sock = await connect(*split_address(peer.route))
            stream = await self._secure(sock, server=False)
            try:
                await stream.send_all([hs.hello(self.name, self.run_id, self.address)])
                node, run = hs.parse_answer(await _read_handshake(stream))
                self._check_answer(peer.name, node, run, stream.peer_identity())
            except BaseException:
                stream.close()
                raise
        self.run_id = run
        return Link(stream, peer.name, run, dialer=self.name)

    def _check_answer(self, expected: str, node: str, run: str, identity: str | None) -> None:
        if node != expected or (identity is not None and identity != node):
            raise hs.HandshakeError(f"dialed {expected!r} but reached {node!r}"
                                    + (f" (certificate {identity!r})" if identity else ""))
        if self.run_id is not None and run != self.run_id:
            raise hs.HandshakeError(f"peer {node!r} is in run {run!r}, not {self.run_id!r}")

    async def _secure(self, sock: socket.socket, *, server: bool) -> SocketStream:
        """Wrap in TLS (doing the handshake) when configured; close ``sock`` on failure."""
        context = self._server_context if server else self._client_context
        if context is None:
            return SocketStream(sock)
        try:
            sock.setblocking(False)
            wrapped = context.wrap_socket(sock, server_side=server,
                                          do_handshake_on_connect=False)
        except BaseException:
            sock.close()
            raise
        try:  # the wrapped socket owns the descriptor now
            await _tls_handshake(wrapped)
        except BaseException:
            wrapped.close()
            raise
        return SocketStream(wrapped)


async def _read_handshake(stream: SocketStream) -> bytearray:
    prefix = await stream.receive_exactly(4)
    size = int.from_bytes(prefix, "little")
    hs.check_size(size)
    return await stream.receive_exactly(size)


async def _tls_handshake(sock: ssl.SSLSocket) -> None:
    while True:
        try:
            return sock.do_handshake()
        except ssl.SSLWantReadError:
            await anyio.wait_readable(sock)
        except ssl.SSLWantWriteError:
            await anyio.wait_writable(sock)


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
        host, port = sock.getpeername()[:2]
    except OSError:
        return "?"
    return f"{host}:{port}"


def describe(exc: BaseException) -> str:
    if isinstance(exc, anyio.EndOfStream | anyio.IncompleteRead):
        return "the peer closed the connection without goodbye"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
