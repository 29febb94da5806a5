"""Push-sum: averaging on directed graphs with weights the sender sets.

A node with out-degree d keeps a share 1/(d+1) of its values and sends one such share
to each out-neighbour; it then adds up what came in. Every node knows its out-degree,
so the mixing matrix A (A[j, i] = 1/(d_i + 1) for j an out-neighbour of i, or i) is
column stochastic without any node knowing the graph: sums are preserved, and the
ratio x / w of two pushed quantities (w(0) = 1) converges to the true average where
row-stochastic consensus converges to a stationary-distribution-weighted one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from peerflow.actors import SyncAlgorithmExecutor

from ._consensus import ValueHistory, _iterations
from ._steps import Tree, tree_map, weighted_sum


def push_share(value: Tree, out_degree: int) -> Tree:
    """The share of ``value`` a node keeps and sends to each of its out-neighbours."""
    scale = 1.0 / (out_degree + 1)
    return tree_map(lambda leaf: leaf * scale, value)


def push_mix(share: Tree, received: Mapping[str, Tree], senders: Sequence[str]) -> Tree:
    """The node's own share plus every in-neighbour's share, added in ``senders`` order."""
    return weighted_sum(share, 1.0, [(received[sender], 1.0) for sender in senders])


class PushSumExecutor(ValueHistory, SyncAlgorithmExecutor):
    """Averages a value over a directed graph for ``extra["iterations"]`` iterations.

    Each iteration pushes ``x`` and the weight ``w`` (w(0) = 1) and records the
    estimate ``x / w`` in ``value_history``. The in-neighbours' config weights are
    not used: only the out-degree matters.

    Args:
        initial_value: a number, numpy array or torch tensor.
        sync_timeout: seconds to wait for all neighbours' values of one iteration.
    """

    def __init__(self, initial_value: Any, sync_timeout: float = 10.0,
                 max_ahead: int = 1000) -> None:
        super().__init__(sync_timeout=sync_timeout, max_ahead=max_ahead)
        self.initial_value = initial_value
        self.current_value = initial_value
        self.push_weight = 1.0
        self.value_history: list[Any] = [initial_value]

    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        senders = [neighbor.id for neighbor in self.neighbors]
        pushed = {"x": self.initial_value, "w": 1.0}
        for t in range(_iterations(extra)):
            share = push_share(pushed, len(self.out_neighbors))
            pushed = push_mix(share, await self.exchange(share, t), senders)
            self.push_weight = pushed["w"]
            self.current_value = pushed["x"] / pushed["w"]
            self.value_history.append(self.current_value)
        return self.to_result()
