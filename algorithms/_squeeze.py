"""DGD with compressed gossip and error feedback (DeepSqueeze: Tang, Lian, Yan, Liu 2019).

Each node sends its parameters compressed, plus what the last compression dropped (the
residual), and moves toward the weighted compressed values it receives:

    c_i = C(x_i + e_i);  e_i <- x_i + e_i - c_i
    x_i <- x_i + gamma (sum_j w_ij c_j - c_i)     (self weight included: W - I acts on c)
    x_i <- x_i - a grad f_i(x_i)

As W - I sums to zero over a doubly stochastic W, the nodes' average moves by the
gradient steps only. With no compression and gamma = 1 it is DGD, step for step. Unlike
CHOCO, nodes keep no copies of their neighbours: what a compression drops waits in the
residual, so it reaches a neighbourhood of the optimum whose size grows with what the
compressor drops. The payload of the next iteration is compressed in ``update``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from ._compress import Compressor, decompress_tree, error_feedback
from ._loop import Algorithm
from ._steps import Params, _step
from ._trees import Tree, tree_map

__all__ = ["SqueezeState", "error_feedback_dgd"]


class SqueezeState(NamedTuple):
    """A node's state: parameters, the compressed value it sends next, the residual."""

    x: Params
    c: Tree
    residual: Params


def error_feedback_dgd(stepsize: float, gamma: float, compressor: Compressor,
                       generator: torch.Generator) -> Algorithm:
    """DGD whose gossip sends ``C(x + e)`` with error feedback (see the module)."""
    def encode(x: Params, residual: Params | None) -> SqueezeState:
        c, kept = error_feedback(compressor.contraction, x, residual, generator)
        return SqueezeState(x, c, kept)

    def query(state: SqueezeState, mixed: dict[str, Tree]) -> tuple[Params, Any]:
        own = decompress_tree(state.c)
        x = tree_map(lambda x, m, c: x + gamma * (m - c), state.x, mixed["c"], own)
        return x, (x, state.residual)

    def update(pending: tuple[Params, Params], g: Params) -> SqueezeState:
        x, residual = pending
        return encode(_step(x, stepsize, g), residual)

    return Algorithm(lambda x0: encode(x0, None), lambda state: {"c": state.c}, query, update,
                     receive=decompress_tree)
