"""In-process transport: envelopes go straight into the recipient's delivery callback.

By reference, with no awaited send: the per-message cost is one dict lookup and
one call. In strict mode every envelope is encoded and decoded on the way, which
proves that what runs here also runs over the network (the test suite runs so).
"""

from __future__ import annotations

import anyio

from ._codec import decode, encode
from ._envelope import Envelope
from .abc import Deliver, Transport


class MemoryTransport(Transport):
    """Delivers envelopes between endpoints of one process.

    Args:
        strict: run every envelope through the codec (encode, then decode).
    """

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self._endpoints: dict[str, Deliver] = {}
        self._closed = False

    def register(self, name: str, deliver: Deliver) -> None:
        if name in self._endpoints:
            raise ValueError(f"endpoint {name!r} is already registered")
        self._endpoints[name] = deliver

    def unregister(self, name: str) -> None:
        self._endpoints.pop(name, None)

    def send(self, envelope: Envelope) -> None:
        deliver = self._endpoints.get(envelope.recipient)
        if deliver is None:
            if self._closed:  # closing clears the endpoints, so this check costs nothing
                raise anyio.ClosedResourceError
            self.dead_letter(envelope, f"no endpoint named {envelope.recipient!r}")
            return
        if self.strict:
            envelope = decode(bytearray().join(encode(envelope)))
        deliver(envelope)

    async def aclose(self) -> None:
        self._closed = True
        self._endpoints.clear()
