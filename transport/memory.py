"""In-process transport: envelopes go straight into the recipient's delivery callback.

By reference, with no awaited send: the per-message cost is one dict lookup and
one call. ``send_values`` bodies are snapshots (see ``Transport.send_values``), so
a sender's in-place update after the send reaches no one. In strict mode every
envelope is encoded and decoded on the way, which proves that what runs here also
runs over the network (the test suite runs so).
Otherwise ``send_values`` skips the envelopes: each recipient's value hook for
the topic gets (sender, iteration, body) directly, which halves the per-message cost.
With ``count_bytes`` every envelope is encoded (not decoded) to count its sender's bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import anyio

from ._codec import decode, encode, frame_size
from ._envelope import Envelope
from .abc import Deliver, DeliverValue, Transport


class MemoryTransport(Transport):
    """Delivers envelopes between endpoints of one process.

    Args:
        strict: run every envelope through the codec (encode, then decode).
        copy_on_send: snapshot ``send_values`` bodies (see ``Transport.copy_on_send``).
        count_bytes: count each sender's bytes (``sent_bytes``) as the size of the frames
            its envelopes encode to; strict mode always counts (it encodes anyway).
    """

    def __init__(self, *, strict: bool = False, copy_on_send: bool = True,
                 count_bytes: bool = False) -> None:
        self.strict = strict
        self.count_bytes = count_bytes
        self.copy_on_send = copy_on_send
        self._endpoints: dict[str, Deliver] = {}
        self._value_hooks: dict[str, dict[str, DeliverValue]] = {}  # topic -> name -> hook
        self._closed = False

    def register(self, name: str, deliver: Deliver) -> None:
        if name in self._endpoints:
            raise ValueError(f"endpoint {name!r} is already registered")
        self._endpoints[name] = deliver

    def register_values(self, name: str, topic: str, deliver_value: DeliverValue) -> None:
        if name not in self._endpoints:
            raise ValueError(f"endpoint {name!r} must be registered before its value hook")
        self._value_hooks.setdefault(topic, {})[name] = deliver_value

    def unregister(self, name: str) -> None:
        self._endpoints.pop(name, None)
        for hooks in self._value_hooks.values():
            hooks.pop(name, None)

    def send(self, envelope: Envelope) -> None:
        deliver = self._endpoints.get(envelope.recipient)
        if deliver is None:
            if self._closed:  # closing clears the endpoints, so this check costs nothing
                raise anyio.ClosedResourceError
            self.dead_letter(envelope, f"no endpoint named {envelope.recipient!r}")
            return
        if self.strict:
            frame = bytearray().join(encode(envelope))
            self.count_sent(envelope.sender, len(frame))
            envelope = decode(frame)
        elif self.count_bytes:
            self.count_sent(envelope.sender, frame_size(encode(envelope)))
        deliver(envelope)

    def _send_values(self, sender: str, recipients: Iterable[str], topic: str, iteration: int,
                     body: Any, run: str) -> None:
        hooks = self._value_hooks.get(topic)
        if self.strict or self.count_bytes or hooks is None:
            return super()._send_values(sender, recipients, topic, iteration, body, run)
        for recipient in recipients:
            hook = hooks.get(recipient)
            if hook is None:  # no hook, no endpoint, or closed: the envelope path says which
                super()._send_values(sender, (recipient,), topic, iteration, body, run)
            else:
                hook(sender, iteration, body)

    async def aclose(self) -> None:
        self._closed = True
        self._endpoints.clear()
        self._value_hooks.clear()
