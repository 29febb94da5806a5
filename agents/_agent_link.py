"""One connection of an agent link: envelopes over a byte stream, heartbeats both ways.

The link speaks the transport's framing: each envelope is one codec frame behind
a u32 length prefix, and the first frame each way is the transport's handshake
(``Hello``, ``Welcome``; see ``_handshake``).
Sending never awaits: frames queue for a single writer task, so the heartbeat
task and the caller never write at once, with no lock. ``Link.run`` carries the
connection until it ends and says why: the peer closed it, a frame was bad, this
side finished, or the peer was silent for ``timeout`` seconds.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
from anyio.abc import ByteStream
from anyio.streams.tls import TLSAttribute

from peerflow.transport import (
    DEFAULT_MAX_FRAME,
    DecodeError,
    Envelope,
    FrameDecoder,
    decode,
    encode,
    frame_size,
    framed,
    join_address,
    split_address,
)

from ._agent_protocol import AgentProtocolError

_LOST = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


def encode_frame(envelope: Envelope) -> bytes:
    """Return ``envelope`` as one length-prefixed frame.

    Raises:
        TypeError: the body holds something the codec cannot carry.
    """
    buffers = encode(envelope)
    return b"".join(framed(buffers, frame_size(buffers)))


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """How the node side of an agent link waits (NVFlare's TaskExchanger parameters).

    Attributes:
        heartbeat_interval: seconds between heartbeats, each way.
        heartbeat_timeout: seconds of silence after which the peer is gone; also how
            long a task waits for the agent to connect.
        peer_read_timeout: seconds from sending a task until the trainer takes it with
            ``get_task`` (None: ``heartbeat_timeout``; ``math.inf``: no bound).
        task_wait_time: seconds from sending a task until its result (None: as long as
            the agent lives and heartbeats).
        resend_interval: seconds between sends of a task not yet received.
        max_resends: how many times a task is sent again (None: no limit).
    """

    heartbeat_interval: float = 5.0
    heartbeat_timeout: float = 60.0
    peer_read_timeout: float | None = None
    task_wait_time: float | None = None
    resend_interval: float = 2.0
    max_resends: int | None = None

    def __post_init__(self) -> None:
        for name in ("heartbeat_interval", "heartbeat_timeout", "peer_read_timeout",
                     "task_wait_time", "resend_interval"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {value}")
        if self.max_resends is not None and self.max_resends < 0:
            raise ValueError(f"max_resends must be >= 0 or None, got {self.max_resends}")

    @property
    def read_timeout(self) -> float:
        """Seconds for the trainer to take a task: ``peer_read_timeout`` or its default."""
        read = self.peer_read_timeout
        return self.heartbeat_timeout if read is None else read


def parse_address(address: str | tuple[str, int]) -> tuple[str, int]:
    """Return ``(host, port)`` from ``"host:port"`` (``"[::1]:80"`` for IPv6) or a pair.

    Raises:
        ValueError: the address has no valid port.
    """
    if isinstance(address, tuple):
        return str(address[0]), int(address[1])
    return split_address(address, default_host=None)


def format_address(address: tuple[str, int] | None) -> str:
    """Return ``"host:port"`` (``"[host]:port"`` for IPv6), or ``"-"`` for None."""
    return "-" if address is None else join_address(*address)


class Link:
    """Envelopes over one connected byte stream.

    Args:
        stream: the connection; ``aclose`` closes it.
        max_frame: the largest frame accepted from the peer.

    Attributes:
        last_received: ``anyio.current_time()`` of the last envelope received.
    """

    def __init__(self, stream: ByteStream, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._stream = stream
        self._decoder = FrameDecoder(max_frame)
        self._frames: deque[bytearray | memoryview] = deque()
        self._queue, self._outgoing = anyio.create_memory_object_stream[bytes | None](math.inf)
        self._ended: str | None = None
        self.last_received = anyio.current_time()

    @property
    def secure(self) -> bool:
        """Whether the connection is TLS."""
        return self._stream.extra(TLSAttribute.ssl_object, None) is not None

    def send(self, envelope: Envelope) -> None:
        """Queue ``envelope`` for the writer.

        Raises:
            TypeError: the body holds something the codec cannot carry.
            anyio.ClosedResourceError: the link is finished or closed.
        """
        self.send_frame(encode_frame(envelope))

    def send_frame(self, frame: bytes) -> None:
        """Queue an encoded frame for the writer.

        Raises:
            anyio.ClosedResourceError: the link is finished or closed.
        """
        self._queue.send_nowait(frame)

    def finish(self) -> None:
        """Write what is queued, then end ``run``; later sends raise ClosedResourceError."""
        try:
            self._queue.send_nowait(None)
        except anyio.ClosedResourceError:
            return
        self._queue.close()

    async def write_now(self, message: Envelope | bytes) -> None:
        """Write one envelope (or an encoded frame) at once; only while ``run`` is not
        writing (handshakes, goodbyes).

        Raises:
            anyio.BrokenResourceError: the connection is lost.
        """
        await self._stream.send(message if isinstance(message, bytes) else encode_frame(message))

    async def write_last(self, *messages: Envelope) -> None:
        """Write ``messages`` at once, ahead of the queue (the run may be ending); if the
        writer is busy, queue the last one behind it and finish.

        Raises:
            anyio.BrokenResourceError: the connection is lost.
        """
        try:
            for message in messages:
                await self.write_now(message)
        except anyio.BusyResourceError:
            self.send(messages[-1])
            self.finish()

    async def receive_frame(self) -> bytearray | memoryview:
        """Return the body of the next frame from the peer, not decoded (a handshake's).

        Raises:
            anyio.EndOfStream: the peer closed the connection.
            DecodeError: a length prefix is over the link's limit.
        """
        while not self._frames:
            self._frames.extend(self._decoder.feed(await self._stream.receive()))
        self.last_received = anyio.current_time()
        return self._frames.popleft()

    async def receive(self) -> Envelope:
        """Return the next envelope from the peer.

        Raises:
            anyio.EndOfStream: the peer closed the connection.
            DecodeError: a frame is malformed.
        """
        return decode(await self.receive_frame())

    async def run(self, on_envelope: Callable[[Envelope], None],
                  heartbeat: Callable[[], Envelope], interval: float, timeout: float) -> str:
        """Carry the connection until it ends; return why it ended.

        Calls ``on_envelope`` with each envelope received, sends ``heartbeat()``
        every ``interval`` seconds, and ends the link if nothing came for ``timeout``.
        An ``AgentProtocolError`` raised by ``on_envelope`` ends the link.
        """

        async def read_all() -> None:
            while True:
                on_envelope(await self.receive())

        async with anyio.create_task_group() as group:
            for part in (self._write_all, read_all, lambda: self._beat(heartbeat, interval),
                         lambda: self._watch(timeout)):
                group.start_soon(self._until_end, part, group.cancel_scope)
        return self._ended or "the link was closed"

    async def aclose(self) -> None:
        """Close the connection; idempotent."""
        self._queue.close()
        self._outgoing.close()
        await self._stream.aclose()

    async def _until_end(self, part: Callable[[], Awaitable[None]],
                         scope: anyio.CancelScope) -> None:
        try:
            await part()
        except _LOST:
            self._end("the connection was lost")
        except (DecodeError, AgentProtocolError) as exc:
            self._end(f"bad message from the peer: {exc}")
        scope.cancel()

    def _end(self, reason: str) -> None:
        self._ended = self._ended or reason

    async def _write_all(self) -> None:
        async with self._outgoing:
            async for frame in self._outgoing:
                if frame is None:
                    break
                await self._stream.send(frame)
        self._end("this side finished")

    async def _beat(self, heartbeat: Callable[[], Envelope], interval: float) -> None:
        try:
            while True:
                self.send(heartbeat())
                await anyio.sleep(interval)
        except anyio.ClosedResourceError:  # finishing: the writer ends the link
            await anyio.sleep_forever()

    async def _watch(self, timeout: float) -> None:
        while (left := self.last_received + timeout - anyio.current_time()) > 0:
            await anyio.sleep(left)
        self._end(f"no message for {timeout:g} s")
