"""A connected non-blocking socket, plain or TLS, driven by anyio's readiness waits.

Why not anyio's ``SocketStream``: on the asyncio backend it reads through a
``Protocol`` that allocates a fresh ``bytes`` per chunk and writes through a
transport that copies whatever the kernel did not take (and joins
``writelines``). Here reads go with ``recv_into`` into one reused buffer and
writes with ``sendmsg`` over the frame's own buffers (header, then each tensor's
memory), so a large tensor is never concatenated or copied in user space on the
way out. Waiting uses ``anyio.wait_readable``/``wait_writable`` and closing uses
``anyio.notify_closing``, so this works on any anyio backend, uvloop included.
Errors are anyio's: ``EndOfStream``, ``BrokenResourceError``, ``ClosedResourceError``.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
from collections.abc import Sequence
from typing import Final

import anyio

Buffer = bytes | bytearray | memoryview

_IOV_MAX: Final = min(os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024, 1024)
_TLS_COALESCE: Final = 64 * 1024  # TLS writes smaller buffers joined into one record run


def _nbytes(buffer: Buffer) -> int:
    return buffer.nbytes if isinstance(buffer, memoryview) else len(buffer)


class SocketStream:
    """One connected socket with zero-copy reads and gathered writes.

    Args:
        sock: a connected socket; made non-blocking. An ``ssl.SSLSocket`` whose
            handshake is done makes this a TLS stream.
    """

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.tls = isinstance(sock, ssl.SSLSocket)
        self.remote = _format_address(sock.getpeername())
        self._closed = False

    async def receive_into(self, buffer: memoryview) -> int:
        """Read at least one byte into ``buffer``; return how many were read.

        Raises:
            anyio.EndOfStream: the peer closed its side.
            anyio.BrokenResourceError: the connection failed.
            anyio.ClosedResourceError: this stream was closed.
        """
        while True:
            self._check_open()
            try:
                count = self.sock.recv_into(buffer)
            except (BlockingIOError, ssl.SSLWantReadError):
                await self._wait(anyio.wait_readable)
                continue
            except ssl.SSLWantWriteError:
                await anyio.sleep(0.001)  # the writer task owns the writable wait
                continue
            except (OSError, ssl.SSLError) as exc:
                raise self._broken(exc) from exc
            if count == 0:
                raise anyio.EndOfStream
            return count

    async def receive_exactly(self, size: int) -> bytearray:
        """Read exactly ``size`` bytes and nothing beyond them.

        Raises:
            anyio.IncompleteRead: the peer closed first.
            anyio.BrokenResourceError: the connection failed.
        """
        data = bytearray(size)
        view = memoryview(data)
        filled = 0
        while filled < size:
            try:
                filled += await self.receive_into(view[filled:])
            except anyio.EndOfStream:
                raise anyio.IncompleteRead from None
        return data

    async def send_all(self, buffers: Sequence[Buffer]) -> None:
        """Write every buffer in order, in as few system calls as the kernel allows.

        Raises:
            anyio.BrokenResourceError: the connection failed.
            anyio.ClosedResourceError: this stream was closed.
        """
        views = [memoryview(b).cast("B") for b in buffers if _nbytes(b)]
        if self.tls:
            views = _coalesce(views)
        while views:
            self._check_open()
            try:
                sent = self._send_some(views)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                await self._wait(anyio.wait_writable)
                continue
            except (OSError, ssl.SSLError) as exc:
                raise self._broken(exc) from exc
            views = _advance(views, sent)

    def _send_some(self, views: list[memoryview]) -> int:
        if self.tls:  # SSLSocket has no sendmsg
            return self.sock.send(views[0])
        return self.sock.sendmsg(views[:_IOV_MAX])

    async def _wait(self, wait: object) -> None:
        try:
            await wait(self.sock)  # type: ignore[operator]
        except OSError as exc:  # the fd was closed under us (ValueError: fileno -1)
            raise anyio.ClosedResourceError from exc
        except ValueError as exc:
            raise anyio.ClosedResourceError from exc

    def _check_open(self) -> None:
        if self._closed:
            raise anyio.ClosedResourceError

    def _broken(self, exc: BaseException) -> Exception:
        if self._closed:
            return anyio.ClosedResourceError()
        return anyio.BrokenResourceError(f"connection with {self.remote} failed: {exc}")

    def peer_identity(self) -> str | None:
        """The common name of the peer's verified TLS certificate, if any."""
        if not self.tls:
            return None
        cert = self.sock.getpeercert()  # type: ignore[attr-defined]
        for rdn in (cert or {}).get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    return str(value)
        return None

    def close(self) -> None:
        """Close the socket at once, waking any task waiting on it; idempotent."""
        if self._closed:
            return
        self._closed = True
        anyio.notify_closing(self.sock)
        self.sock.close()


def _coalesce(views: list[memoryview]) -> list[memoryview]:
    """Join runs of small buffers so TLS does not make a record per tiny buffer."""
    out: list[memoryview] = []
    run: list[memoryview] = []
    for view in views:
        if view.nbytes < _TLS_COALESCE:
            run.append(view)
            continue
        if run:
            out.append(memoryview(b"".join(run)))
            run = []
        out.append(view)
    if run:
        out.append(memoryview(b"".join(run)))
    return out


def _advance(views: list[memoryview], sent: int) -> list[memoryview]:
    """Drop ``sent`` bytes from the front of ``views``."""
    index = 0
    while index < len(views) and sent >= views[index].nbytes:
        sent -= views[index].nbytes
        index += 1
    rest = views[index:]
    if sent:
        rest[0] = rest[0][sent:]
    return rest


def _format_address(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return str(address)


async def connect(host: str, port: int) -> socket.socket:
    """Open a TCP connection without blocking the event loop.

    Raises:
        OSError: the address does not resolve or the connection is refused.
    """
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        code = sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS):
            raise OSError(code, f"{os.strerror(code)} ({host}:{port})")
        if code:
            await anyio.wait_writable(sock)
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, f"{os.strerror(code)} ({host}:{port})")
    except BaseException:
        sock.close()
        raise
    return sock

