"""What the conformance checks (``testing``) use: the net factories' types, the run,
an inbox that collects deliveries, and dead-letter collection."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Final

import anyio

from ._envelope import Envelope, new_message_id
from .abc import Transport

OpenNet = Callable[[Sequence[str]], AbstractAsyncContextManager[Mapping[str, Transport]]]
"""Yields ``{name: transport}``, every name able to reach every other."""

ClogNet = Callable[[Sequence[str]], AbstractAsyncContextManager[Mapping[str, Transport]]]
"""As ``OpenNet``, but the last name is a clogged peer: reachable, it admits connections
and never reads from them; the mapping holds the transports of the other names."""

RUN: Final = "run-1"
"""The run of every envelope the checks send: bind network transports to it."""
CLOG_BURST: Final = 64
"""How many 1 MiB tells the clogged check sends to the clogged peer (and small ones beside)."""


def tell(sender: str, recipient: str, body: Any = None, iteration: int | None = 0) -> Envelope:
    return Envelope("tell", sender, recipient, "value", body, iteration, RUN, new_message_id())


class Inbox:
    """Collects what an endpoint receives; ``wait(n)`` until n envelopes are in."""

    def __init__(self, name: str = "?", timeout: float = 10.0) -> None:
        self.name, self.timeout = name, timeout
        self.items: list[Envelope] = []
        self.fast: set[int] = set()  # ids of those that came by the ``send_values`` fast path
        self._changed = anyio.Event()

    def __call__(self, envelope: Envelope) -> None:
        self.items.append(envelope)
        self._changed.set()

    def value(self, sender: str, iteration: int, body: object) -> None:
        """The fast path of ``send_values`` (topic "value"): kept as a tell with no id."""
        envelope = Envelope("tell", sender, self.name, "value", body, iteration, RUN, "")
        self.fast.add(id(envelope))
        self(envelope)

    async def wait(self, count: int) -> list[Envelope]:
        with anyio.fail_after(self.timeout):
            while len(self.items) < count:
                self._changed = anyio.Event()
                await self._changed.wait()
        return self.items


def dead_letters(net: Mapping[str, Transport]) -> list[tuple[Envelope, str]]:
    """Collect the dead letters of every transport of ``net`` into the returned list."""
    letters: list[tuple[Envelope, str]] = []
    for transport in {id(t): t for t in net.values()}.values():
        transport.on_dead_letter = lambda e, r: letters.append((e, r))
    return letters


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():  # a dead letter may come from any task: nothing to wait on
            await anyio.sleep(0.01)
