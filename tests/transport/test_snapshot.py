"""What a node sends is what its neighbours receive, whatever it does to the value after."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import numpy as np
import pytest
import torch
from _net import RUN

import peerflow
from peerflow.actors import Config, Neighbor, Network, Node, SyncAlgorithmExecutor
from peerflow.transport import (
    EmulatedTransport,
    Envelope,
    Link,
    MemoryTransport,
    TcpTransport,
    Transport,
)


def body(t: float) -> dict[str, Any]:
    """A value of every shape a node sends: arrays, tensors, in a dict, a list and a tuple."""
    return {"np": np.full(3, t), "pt": torch.full((2,), t, requires_grad=True),
            "list": [np.full(2, t, dtype=np.float32), torch.full((2,), t)],
            "tuple": (np.full(1, t), 1.5), "nested": {"pt": torch.full((1,), t)}}


def update_in_place(value: Any) -> None:
    """What a training step does to the parameters it just sent."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        for item in value:
            update_in_place(item)
    elif isinstance(value, np.ndarray):
        value += 100
    elif isinstance(value, torch.Tensor):
        with torch.no_grad():
            value.add_(100)


def plain(value: Any) -> Any:
    """The numbers a value holds, comparable across transports."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, np.ndarray | torch.Tensor):
        return value.tolist()
    return value


class Updater(SyncAlgorithmExecutor):
    """Sends ``body(t)`` and updates it in place as soon as the send returns; the other
    node waits a moment before each exchange, so it reads what it got after that update."""

    def __init__(self, late: bool) -> None:
        super().__init__(sync_timeout=5.0)
        self.late = late
        self.received: list[Any] = []

    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        for t in range(3):
            if self.late:
                await anyio.sleep(0.02)
            value = body(float(t))
            gathered = self.exchange(value, t)
            update_in_place(value)
            self.received.append(plain(await gathered))
        return {}


TRANSPORTS: dict[str, Callable[[], str | Transport]] = {
    "by reference": MemoryTransport,
    "strict": lambda: MemoryTransport(strict=True),
    "emulated": lambda: EmulatedTransport(MemoryTransport(), Link(latency=0.005)),
    "tcp": lambda: "tcp",
}


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_update_in_place_after_the_send_reaches_no_neighbour(transport: str) -> None:
    network = Network((Node("a", (Neighbor("b", 0.5),)), Node("b", (Neighbor("a", 0.5),))))
    executors = {"a": Updater(late=False), "b": Updater(late=True)}
    with anyio.fail_after(20):
        result = await peerflow.run(Config(network, {}), executors, TRANSPORTS[transport]())
    assert result.ok, result.reason
    expected = [{"a": plain(body(float(t)))} for t in range(3)]
    assert executors["b"].received == expected
    assert executors["a"].received == [{"b": plain(body(float(t)))} for t in range(3)]


class Inbox:
    def __init__(self) -> None:
        self.bodies: list[Any] = []

    def __call__(self, envelope: Envelope) -> None:
        self.bodies.append(plain(envelope.body))


async def test_a_frame_queued_before_the_connection_carries_the_value_as_sent() -> None:
    async with TcpTransport("b", run_id=RUN) as b, TcpTransport("a", run_id=RUN) as a:
        inbox = Inbox()
        b.register("b", inbox)
        a.add_route("b", str(b.address))
        value = body(1.0)
        a.send_values("a", ["b"], "value", 0, value, RUN)  # queued: not connected yet
        update_in_place(value)
        with anyio.fail_after(10):
            while not inbox.bodies:
                await anyio.sleep(0.01)
    assert inbox.bodies == [plain(body(1.0))]


async def test_without_copy_on_send_memory_passes_the_senders_objects() -> None:
    async with MemoryTransport(copy_on_send=False) as transport:
        inbox = Inbox()
        got: list[Any] = []
        transport.register("b", inbox)
        transport.register_values("b", "value", lambda s, t, value: got.append(value))
        value = body(1.0)
        transport.send_values("a", ["b"], "value", 0, value, RUN)
    assert got[0] is value


def test_a_snapshot_copies_mutable_buffers_once_and_shares_immutable_values() -> None:
    from peerflow.transport._snapshot import snapshot  # the one place every send goes through

    frozen = np.frombuffer(b"\x00" * 16)
    view_of_writable = np.arange(4.0)[::2]
    view_of_writable.flags.writeable = False
    value = {"frozen": frozen, "view": view_of_writable, "x": 2.5, "s": "text",
             "b": bytearray(b"ab"), "n": np.float32(1)}
    copy = snapshot(value)
    assert copy["frozen"] is frozen and copy["x"] is value["x"] and copy["n"] is value["n"]
    assert copy["view"] is not view_of_writable and copy["b"] == b"ab"
    assert type(copy["b"]) is bytes
