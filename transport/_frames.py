"""Sans-IO framing for byte streams: a u32 length prefix, then the frame body.

Wire format: ``u32 little-endian body length | body``; one body is one codec frame.
``FrameDecoder`` does no I/O: the TCP layer feeds it whatever the socket returned
and gets back the complete bodies. The length is checked against the limit before
anything is allocated for the body; the body buffer is then allocated once and
filled in place, so a large frame arriving in small chunks is copied once. A body
of ``UNZEROED_FROM`` bytes or more is not zeroed first (a bytearray is, which makes
all of it resident at once): fresh memory then costs only as bytes land in it, so
a peer that declares a large frame and sends little of it makes the reader hold
little, and no pass is spent zeroing.

A reader may instead read into the decoder's own buffers (``read_buffer`` /
``filled``, made for asyncio's ``BufferedProtocol``): a body that spans reads
gets the rest of its bytes straight from the kernel, and a read that holds
exactly one whole frame, the common case of small messages, is split in one step.
After an error the decoder stays broken: a stream that lost its framing cannot
be trusted again.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

import numpy as np

from ._codec import DEFAULT_MAX_FRAME
from .abc import DecodeError

MAX_FRAME_PREFIX: Final = (1 << 32) - 1
"""The largest body length a u32 prefix can express."""

_PREFIX: Final = struct.Struct("<I")
_READ_SIZE: Final = 256 << 10
_JOIN_BELOW: Final = 64 << 10  # a body in one buffer this small is joined to its prefix
UNZEROED_FROM: Final = 1 << 20
"""Bodies this large or larger that span reads are not zeroed first (see above)."""

Buffer = bytes | bytearray | memoryview
Body = bytearray | memoryview
"""A frame body: writable, contiguous bytes of its own (a memoryview of unzeroed
memory when large)."""


def framed(buffers: Sequence[Buffer], size: int) -> list[Buffer]:
    """A body given as buffers (``size`` bytes in all) behind its length prefix, as
    buffers to write in order; a small body in one buffer is joined to its prefix.

    Raises:
        ValueError: size does not fit in a u32.
    """
    if len(buffers) == 1 and size < _JOIN_BELOW:
        return [_PREFIX.pack(size) + buffers[0]]
    return [frame_prefix(size), *buffers]


def frame_prefix(size: int) -> bytes:
    """Return the length prefix to write before a body of ``size`` bytes.

    Raises:
        ValueError: size is negative or does not fit in a u32.
    """
    if not 0 <= size <= MAX_FRAME_PREFIX:
        raise ValueError(f"frame size {size} does not fit a u32 length prefix")
    return _PREFIX.pack(size)


class FrameDecoder:
    """Splits a byte stream into frame bodies, keeping partial data between feeds."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME, read_size: int = _READ_SIZE) -> None:
        """Create a decoder refusing bodies longer than ``max_frame`` bytes; ``read_buffer``
        offers reads of up to ``read_size`` bytes between bodies."""
        self._max_frame = max_frame
        self._read_size = read_size
        self._scratch: memoryview | None = None  # read_buffer's, made at its first call
        self._into_body = False  # read_buffer last gave out the rest of the body
        self._prefix = bytearray()
        self._size: int | None = None  # body length once its prefix is complete
        self._body: Body | None = None  # allocated when a body spans feeds
        self._filled = 0
        self._error: DecodeError | None = None

    @property
    def buffered(self) -> int:
        """How many bytes of an incomplete frame (prefix included) are held."""
        if self._size is None:
            return len(self._prefix)
        return _PREFIX.size + self._filled

    def feed(self, data: bytes | bytearray | memoryview) -> list[Body]:
        """Take the next bytes of the stream; return every body now complete.

        Each body is its own writable buffer (``Body``), without its prefix.

        Raises:
            DecodeError: a length prefix is over ``max_frame``, now or earlier.
        """
        if self._error is not None:
            raise DecodeError(f"frame decoder is broken: {self._error}")
        view = memoryview(data).cast("B")
        frames: list[Body] = []
        pos = 0
        while pos < len(view) or self._size == 0:
            if self._size is None:
                pos = self._take_prefix(view, pos)
            else:
                pos = self._take_body(view, pos, frames)
        return frames

    def _take_prefix(self, view: memoryview, pos: int) -> int:
        """Read prefix bytes; once all 4 are in, check the length and return."""
        if not self._prefix and len(view) - pos >= _PREFIX.size:
            (size,) = _PREFIX.unpack_from(view, pos)
            end = pos + _PREFIX.size
        else:
            end = min(len(view), pos + _PREFIX.size - len(self._prefix))
            self._prefix += view[pos:end]
            if len(self._prefix) < _PREFIX.size:
                return end
            (size,) = _PREFIX.unpack(self._prefix)
            self._prefix.clear()
        if size > self._max_frame:
            self._error = DecodeError(
                f"frame length {size} is over the limit of {self._max_frame} bytes"
            )
            raise self._error
        self._size = size
        return end

    def read_buffer(self) -> memoryview:
        """Where to read the next bytes of the stream: the unfilled rest of a body that
        spans reads, or else a buffer of ``read_size`` bytes. Then call ``filled``."""
        self._into_body = self._body is not None
        if self._body is not None:
            return memoryview(self._body)[self._filled :]
        if self._scratch is None:
            self._scratch = memoryview(bytearray(self._read_size))
        return self._scratch

    def filled(self, count: int) -> list[Body]:
        """Take the ``count`` bytes just read into ``read_buffer()``; return every body
        now complete (as ``feed``).

        Raises:
            DecodeError: as ``feed``.
        """
        if self._into_body:
            self._filled += count
            return self._complete()
        assert self._scratch is not None
        if self._size is None and not self._prefix and self._error is None and count >= 4:
            (size,) = _PREFIX.unpack_from(self._scratch)
            if size + 4 == count and size <= self._max_frame:  # exactly one whole frame
                return [bytearray(self._scratch[4:count])]
        return self.feed(self._scratch[:count])

    def _take_body(self, view: memoryview, pos: int, frames: list[Body]) -> int:
        """Copy body bytes; append the body to frames once complete."""
        assert self._size is not None
        available = len(view) - pos
        if self._body is None:
            if available >= self._size:  # whole body here: one copy, no zero-fill
                end = pos + self._size
                frames.append(bytearray(view[pos:end]))
                self._size = None
                return end
            self._body = bytearray(self._size) if self._size < UNZEROED_FROM \
                else memoryview(np.empty(self._size, np.uint8))
        take = min(available, self._size - self._filled)
        self._body[self._filled : self._filled + take] = view[pos : pos + take]
        self._filled += take
        frames.extend(self._complete())
        return pos + take

    def _complete(self) -> list[Body]:
        """Hand over the spanning body if it is whole, and make ready for the next prefix."""
        if self._body is None or self._filled < len(self._body):
            return []
        body = self._body
        self._size, self._body, self._filled = None, None, 0
        return [body]
