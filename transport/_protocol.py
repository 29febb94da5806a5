"""The TCP transport's data plane: one asyncio ``BufferedProtocol`` per connection.

Why asyncio's loop API and not anyio: the runtime runs on anyio's asyncio backend
(uvloop included), and measuring a 64-byte round trip showed where an
anyio-style stream loses its time: every wait for data registered and
unregistered the socket with the loop (``wait_readable``: one epoll_ctl to add,
three to remove, a future and a task wake per read), and every message woke a
writer task. Here the loop calls ``buffer_updated`` as soon as bytes are in;
they land in the frame decoder's buffer (or, for a large frame, straight in
its body), and each complete frame goes to a callback in that same call. ``write``
hands a frame to the loop's transport, which sends it at once. Bytes the kernel
did not take wait in the transport, which calls ``pause_writing`` above its
high-water mark; the owner keeps its own queue until ``resume_writing``.

TLS is asyncio's (``ssl=`` on ``create_connection`` and ``connect_accepted_socket``).
Before ``start`` the protocol reads nothing unasked: ``receive_exactly`` reads
the handshake frame and not one byte past it. Errors are anyio's:
``IncompleteRead``, ``BrokenResourceError``, ``ClosedResourceError``; and
``OverLimit`` when an unfinished frame breaks the transport's ``ReadLimits``.
Once the connection is lost, the protocol lets go of its decoder and callbacks:
a partial frame's memory is freed then, not when a cycle through the owner's
callback is collected.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Sequence
from typing import Final, cast

import anyio

from ._address import format_sockaddr
from ._frames import Body, Buffer, FrameDecoder
from ._guard import OverLimit, ReadLimits
from ._handshake import HandshakeError
from .abc import DecodeError
from .tls import AGENT_ROLES, certificate_subject

OnFrame = Callable[[Body], None]

_COALESCE: Final = 64 << 10  # smaller buffers are joined: one TLS record, fewer iovecs


class FrameProtocol(asyncio.BufferedProtocol):
    """One connection: exact handshake reads, then frames to a callback; frame writes.

    Args:
        tls: whether the transport under it is TLS (for describing it).
        limits: the bounds its unfinished frames count against (None: unbounded).
    """

    def __init__(self, tls: bool, limits: ReadLimits | None = None) -> None:
        self.tls = tls
        self.limits = limits
        self.remote = "?"
        self.paused = False  # the transport's write buffer is over its high-water mark
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[BaseException | None] = \
            asyncio.get_running_loop().create_future()
        self._inbox = bytearray()  # handshake bytes read and not yet taken
        self._need = 0  # how many receive_exactly waits for
        self._handshake_buffer = memoryview(b"")
        self._waiter: asyncio.Future[None] | None = None
        self._decoder: FrameDecoder | None = None
        self._on_frame: OnFrame | None = None
        self._on_writable: Callable[[], None] | None = None
        self._failure: BaseException | None = None
        self._held = 0  # bytes of an unfinished frame, counted in limits.held
        self._started: float | None = None  # when that frame's first byte came

    # -- asyncio callbacks ----------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.remote = format_sockaddr(transport.get_extra_info("peername"))
        transport.pause_reading()  # nothing is read before it is asked for

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._decoder is None:  # the handshake: what is asked for, or one byte if
            # nothing is yet (uvloop starts reading after connection_made, paused or not)
            wanted = max(self._need - len(self._inbox), 1)
            self._handshake_buffer = memoryview(bytearray(wanted))
            return self._handshake_buffer
        return self._decoder.read_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        if self._decoder is None:
            self._handshake_read(nbytes)
            return
        assert self._on_frame is not None
        try:
            frames = self._decoder.filled(nbytes)
            for body in frames:
                self._on_frame(body)
            held = self._decoder.buffered
            if held or self._held:
                self._count(held, restart=bool(frames))
        except (DecodeError, OverLimit) as exc:  # a bad frame: this connection only ends;
            self.fail(type(exc)(str(exc)))  # kept without its traceback, which holds the frame
        except Exception as exc:  # a bug: this connection only ends, and it is logged
            self.fail(exc)

    def _count(self, held: int, *, restart: bool) -> None:
        """Count an unfinished frame's bytes against the limits.

        Raises:
            OverLimit: the transport's connections hold more than ``max_buffered``.
        """
        if self._started is None or restart:
            self._started = asyncio.get_running_loop().time() if held else None
        limits = self.limits
        if limits is not None:
            limits.held += held - self._held
        self._held = held
        if limits is not None and limits.held > limits.max_buffered:
            raise OverLimit(f"unfinished frames hold {limits.held} bytes, over the limit "
                            f"of {limits.max_buffered}")

    def stalled(self, now: float) -> str | None:
        """Why this connection's unfinished frame counts as stalled at ``now``, if it does."""
        if self._started is None or self.limits is None or self._decoder is None:
            return None
        return self.limits.stalled(self._decoder.buffered, now - self._started)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self._on_writable is not None:
            self._on_writable()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.limits is not None:
            self.limits.held -= self._held
        self._held, self._started = 0, None
        self._decoder = self._on_frame = self._on_writable = None  # see module doc
        self._handshake_buffer = memoryview(b"")
        if exc is not None and self._failure is None:
            self._failure = anyio.BrokenResourceError(
                f"connection with {self.remote} failed: {exc}")
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(self._failure or anyio.IncompleteRead())
        if not self.closed.done():
            self.closed.set_result(self._failure)

    # -- the handshake ----------------------------------------------------------------
    async def receive_exactly(self, size: int) -> bytearray:
        """Read exactly ``size`` bytes and nothing beyond them (before ``start``).

        Raises:
            anyio.IncompleteRead: the connection closed first.
            anyio.BrokenResourceError: the connection failed.
        """
        self._need = size
        try:
            while len(self._inbox) < size:
                if self.closed.done() or self.transport is None:
                    raise self._failure or anyio.IncompleteRead()
                self._waiter = asyncio.get_running_loop().create_future()
                self.transport.resume_reading()
                await self._waiter
        finally:
            self._need, self._waiter = 0, None
        data = self._inbox[:size]
        del self._inbox[:size]
        return data

    def _handshake_read(self, nbytes: int) -> None:
        assert self.transport is not None
        self._inbox += self._handshake_buffer[:nbytes]
        if len(self._inbox) >= self._need:
            self.transport.pause_reading()
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(None)

    # -- established -----------------------------------------------------------------
    def start(self, on_frame: OnFrame, on_writable: Callable[[], None], max_frame: int) -> None:
        """Deliver every frame body from now on to ``on_frame``; call ``on_writable``
        when the transport takes writes again after ``pause_writing``."""
        assert self.transport is not None
        self._on_frame, self._on_writable = on_frame, on_writable
        self._decoder = FrameDecoder(max_frame)
        if not self.transport.is_closing():
            self.transport.resume_reading()

    def write(self, buffers: Sequence[Buffer]) -> None:
        """Hand buffers to the transport to send in order (dropped once it is closing)."""
        if self.transport is None or self.transport.is_closing():
            return
        if len(buffers) == 1:
            self.transport.write(buffers[0])
        else:
            self.transport.writelines(_coalesce(buffers))

    @property
    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        return self.transport.get_write_buffer_size() if self.transport else 0

    def peer_identity(self) -> str | None:
        """The common name of the peer's verified TLS certificate, if any.

        Raises:
            HandshakeError: the certificate is one of an agent link (a trainer's, say).
        """
        cert = self.transport.get_extra_info("peercert") if self.tls and self.transport else None
        name, role = certificate_subject(cert)
        if role in AGENT_ROLES:
            raise HandshakeError(f"a certificate of role {role!r} ({name!r}) is for an agent "
                                 "link, not for joining a run")
        return name

    # -- closing -----------------------------------------------------------------------
    def close(self) -> None:
        """Close after what was written is sent (and TLS says goodbye); idempotent."""
        if self.transport is not None and not self.closed.done():
            self.transport.close()

    def fail(self, exc: BaseException) -> None:
        """Close at once because of ``exc``, which ``wait_closed`` raises."""
        self._failure = self._failure or exc
        self.abort()

    def abort(self) -> None:
        """Close at once, dropping anything not sent; idempotent."""
        if self.transport is not None and not self.closed.done():
            self._failure = self._failure or anyio.ClosedResourceError()
            self.transport.abort()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed.

        Raises:
            anyio.BrokenResourceError: the connection failed.
            anyio.ClosedResourceError: this side aborted it.
            DecodeError: the peer sent a frame over the limit or one that did not decode.
        """
        failure = await asyncio.shield(self.closed)
        if failure is not None:
            raise failure


async def dial(host: str, port: int, context: ssl.SSLContext | None,
               limits: ReadLimits | None = None) -> FrameProtocol:
    """Connect (and do the TLS handshake when given a context).

    Raises:
        OSError: the address does not resolve or the connection is refused.
        ssl.SSLError: the TLS handshake failed.
    """
    protocol = FrameProtocol(context is not None, limits)
    await asyncio.get_running_loop().create_connection(lambda: protocol, host, port,
                                                       ssl=context)
    return protocol


async def adopt(sock: socket.socket, context: ssl.SSLContext | None,
                limits: ReadLimits | None = None) -> FrameProtocol:
    """Take over an accepted socket (doing the TLS handshake when given a context).

    The loop owns ``sock`` from now on, also when this fails.

    Raises:
        OSError: the connection failed.
        ssl.SSLError: the TLS handshake failed.
    """
    protocol = FrameProtocol(context is not None, limits)  # uvloop returns its TLS layer's
    await asyncio.get_running_loop().connect_accepted_socket(lambda: protocol, sock,
                                                             ssl=context)
    return protocol


def _coalesce(buffers: Sequence[Buffer]) -> list[Buffer]:
    """Join runs of small buffers; pass large ones (tensors) through uncopied."""
    out: list[Buffer] = []
    run: list[Buffer] = []
    for buffer in buffers:
        if (buffer.nbytes if isinstance(buffer, memoryview) else len(buffer)) < _COALESCE:
            run.append(buffer)
            continue
        if run:
            out.append(b"".join(run))
            run = []
        out.append(buffer)
    if run:
        out.append(run[0] if len(run) == 1 else b"".join(run))
    return out
