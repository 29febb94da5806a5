"""Sans-IO framing for byte streams: a u32 length prefix, then the frame body.

Wire format: ``u32 little-endian body length | body``; one body is one codec frame.
``FrameDecoder`` does no I/O: the TCP layer feeds it whatever the socket returned
and gets back the complete bodies. The length is checked against the limit before
anything is allocated for the body; the body buffer is then allocated once and
filled in place, so a large frame arriving in small chunks is copied once. A
reader may also read straight into that buffer (``body_buffer``/``body_filled``),
so a large body is copied by the kernel only.
After an error the decoder stays broken: a stream that lost its framing cannot
be trusted again.
"""

from __future__ import annotations

import struct
from typing import Final

from ._codec import DEFAULT_MAX_FRAME
from .abc import DecodeError

MAX_FRAME_PREFIX: Final = (1 << 32) - 1
"""The largest body length a u32 prefix can express."""

_PREFIX: Final = struct.Struct("<I")


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

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        """Create a decoder refusing bodies longer than ``max_frame`` bytes."""
        self._max_frame = max_frame
        self._prefix = bytearray()
        self._size: int | None = None  # body length once its prefix is complete
        self._body: bytearray | None = None  # allocated when a body spans feeds
        self._filled = 0
        self._error: DecodeError | None = None

    @property
    def buffered(self) -> int:
        """How many bytes of an incomplete frame (prefix included) are held."""
        if self._size is None:
            return len(self._prefix)
        return _PREFIX.size + self._filled

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytearray]:
        """Take the next bytes of the stream; return every body now complete.

        Each body is its own writable bytearray, without its prefix.

        Raises:
            DecodeError: a length prefix is over ``max_frame``, now or earlier.
        """
        if self._error is not None:
            raise DecodeError(f"frame decoder is broken: {self._error}")
        view = memoryview(data).cast("B")
        frames: list[bytearray] = []
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

    def body_buffer(self) -> memoryview | None:
        """The unfilled rest of a body that spans reads (None when there is none).

        Read straight into it, then call ``body_filled`` instead of ``feed``.
        """
        if self._body is None:
            return None
        return memoryview(self._body)[self._filled :]

    def body_filled(self, count: int) -> list[bytearray]:
        """Account for ``count`` bytes read into ``body_buffer()``; return the body once whole."""
        self._filled += count
        return self._complete()

    def _take_body(self, view: memoryview, pos: int, frames: list[bytearray]) -> int:
        """Copy body bytes; append the body to frames once complete."""
        assert self._size is not None
        available = len(view) - pos
        if self._body is None:
            if available >= self._size:  # whole body here: one copy, no zero-fill
                end = pos + self._size
                frames.append(bytearray(view[pos:end]))
                self._size = None
                return end
            self._body = bytearray(self._size)
        take = min(available, self._size - self._filled)
        self._body[self._filled : self._filled + take] = view[pos : pos + take]
        self._filled += take
        frames.extend(self._complete())
        return pos + take

    def _complete(self) -> list[bytearray]:
        """Hand over the spanning body if it is whole, and make ready for the next prefix."""
        if self._body is None or self._filled < len(self._body):
            return []
        body = self._body
        self._size, self._body, self._filled = None, None, 0
        return [body]
