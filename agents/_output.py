"""An agent process's output, line by line, on our stderr with its site's name in front.

Several agents write at once, and beside them the run's own progress and summary:
without a prefix nobody can tell whose line is whose. Their output goes to stderr
so that stdout keeps the run's summary alone. The relay reads each stream until
its end, past the run's end too, so that an agent still writing while it is
stopped does not get a broken pipe.
"""

from __future__ import annotations

import sys
from typing import TextIO

from anyio.abc import ByteReceiveStream

MAX_LINE = 64 * 1024
"""Bytes of output without a newline that are shown as one line (memory stays bounded)."""


async def relay_lines(stream: ByteReceiveStream, prefix: str,
                      sink: TextIO | None = None) -> None:
    """Write each line read from ``stream`` to ``sink`` (stderr) as ``[prefix] line``,
    until the stream ends (then close it); a last line without a newline is written too."""
    pending = b""
    async with stream:
        async for chunk in stream:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            while len(pending) >= MAX_LINE:
                lines.append(pending[:MAX_LINE])
                pending = pending[MAX_LINE:]
            _write(lines, prefix, sink)
    _write([pending] if pending else [], prefix, sink)


def _write(lines: list[bytes], prefix: str, sink: TextIO | None) -> None:
    if not lines:
        return
    out = sys.stderr if sink is None else sink
    out.write("".join(f"[{prefix}] {line.decode(errors='replace').rstrip(chr(13))}\n"
                      for line in lines))
    out.flush()
