"""The floor: the same consensus exchange in bare asyncio, with no framework at all.

Each node is a coroutine; each iteration it puts its value straight into every
out-neighbour's per-iteration dict and awaits one Future that the last expected
value resolves (shared/baselines: "per-iteration dict + Future"). The mixing
arithmetic and the history kept are the same as ``ConsensusExecutor``'s, so the
difference to a peerflow run is the framework's own cost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, MutableSequence, Sequence
from typing import Any

from peerflow.actors import Network

History = Callable[[Any], MutableSequence[Any]]
Stamp = tuple[float, float]


def stamp() -> Stamp:
    """Wall time and this thread's CPU time, in seconds (CPU time ignores other processes)."""
    return time.perf_counter(), time.thread_time()


class _Box:
    """One node's per-iteration dicts and the Future its owner awaits."""

    __slots__ = ("slots", "need")

    def __init__(self, need: int) -> None:
        self.slots: dict[int, list[Any]] = {}
        self.need = need

    def put(self, sender: str, iteration: int, value: Any) -> None:
        slot = self.slots.get(iteration)
        if slot is None:
            slot = self.slots[iteration] = [{}, None]
        values = slot[0]
        values[sender] = value
        if len(values) == self.need and slot[1] is not None:
            slot[1].set_result(None)

    async def gather(self, iteration: int) -> dict[str, Any]:
        slot = self.slots.get(iteration)
        if slot is None:
            slot = self.slots[iteration] = [{}, None]
        if len(slot[0]) < self.need:
            slot[1] = asyncio.get_running_loop().create_future()
            await slot[1]
        del self.slots[iteration]
        return slot[0]


async def floor_run(network: Network, initial: Sequence[Any], iterations: int,
                    history: History = lambda x0: [x0], probe: list[Stamp] | None = None) -> list[Any]:
    """Run bare-asyncio consensus; return each node's final value.

    Args:
        network: who mixes whom, with which weights (as for peerflow).
        initial: each node's initial value, in node order.
        iterations: how many exchanges.
        history: builds each node's history from its initial value.
        probe: if given, the first node appends ``stamp()`` at each exchange.
    """
    boxes = {node.id: _Box(len(node.neighbors)) for node in network.nodes}
    out = network.out_neighbors()
    finals: dict[str, Any] = {}

    async def node_loop(index: int) -> None:
        node = network.nodes[index]
        me, box, targets = node.id, boxes[node.id], [boxes[t] for t in out.get(node.id, [])]
        in_weights = [(n.id, n.weight or 0.0) for n in node.neighbors]
        self_weight = 1.0 - sum(w for _, w in in_weights)
        value = initial[index]
        values_seen = history(value)
        stamps = probe if index == 0 else None
        for t in range(iterations):
            if stamps is not None:
                stamps.append(stamp())
            for target in targets:
                target.put(me, t, value)
            values = await box.gather(t)
            mixed = value * self_weight
            for sender, weight in in_weights:
                mixed = mixed + values[sender] * weight
            value = mixed
            values_seen.append(mixed)
        finals[me] = value

    await asyncio.gather(*(node_loop(i) for i in range(len(network.nodes))))
    return [finals[node_id] for node_id in network.node_ids]
