"""CHOCO-gossip and CHOCO-SGD (Koloskova, Stich, Jaggi 2019): gossip with compressed
differences, which reaches consensus (and the optimum) with any contraction compressor.

Each node keeps public copies x_hat_j of its in-neighbours' parameters and its own,
all updated by the same compressed differences, so they agree on every node:

    q_i = C(x_i - x_hat_i);  send q_i;  x_hat_j <- x_hat_j + q_j  (j = i and in-neighbours)
    x_i <- x_i + gamma * sum_j w_ij (x_hat_j - x_hat_i)

Only the weighted sum s_i = sum_j w_ij x_hat_j (self weight included) is needed, and it
follows the mixed payloads: s_i <- s_i + sum_j w_ij q_j, so a node's memory does not grow
with its degree. CHOCO-SGD adds the local step x_i <- x_i - a grad f_i(x_i) after each
gossip (combine, then adapt, as DGD: with no compression and gamma = 1 it *is* DGD).
The payload of the next iteration is compressed in ``update``, as the loop's ``send``
reads the state alone.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from ._compress import Compressor, compress_tree, decompress_tree
from ._loop import Algorithm
from ._steps import Params, _step
from ._trees import Tree, tree_map

__all__ = ["ChocoState", "choco_gossip", "choco_sgd"]


class ChocoState(NamedTuple):
    """A node's CHOCO state.

    Attributes:
        x: its parameters.
        x_hat: its public copy (what its neighbours know of x).
        s: the weighted sum of its own and its in-neighbours' public copies.
        q: the compressed difference it sends next.
    """

    x: Params
    x_hat: Params
    s: Params
    q: Tree


def _choco(gamma: float, compressor: Compressor, generator: torch.Generator,
           stepsize: float | None) -> Algorithm:
    compress = compressor.contraction

    def payload(x: Params, x_hat: Params) -> Tree:
        return compress_tree(compress, tree_map(torch.sub, x, x_hat), generator)

    def init(x0: Params) -> ChocoState:
        zeros = tree_map(torch.zeros_like, x0)
        return ChocoState(x0, zeros, zeros, payload(x0, zeros))

    def query(state: ChocoState, mixed: dict[str, Tree]) -> tuple[Params | None, Any]:
        x_hat = tree_map(torch.add, state.x_hat, decompress_tree(state.q))
        s = tree_map(torch.add, state.s, mixed["q"])
        x = tree_map(lambda x, s, h: x + gamma * (s - h), state.x, s, x_hat)
        return (None if stepsize is None else x), (x, x_hat, s)

    def update(pending: tuple[Params, Params, Params], g: Params | None) -> ChocoState:
        x, x_hat, s = pending
        if g is not None:
            x = _step(x, stepsize or 0.0, g)
        return ChocoState(x, x_hat, s, payload(x, x_hat))

    return Algorithm(init, lambda state: {"q": state.q}, query, update,
                     receive=decompress_tree)


def choco_gossip(gamma: float, compressor: Compressor, generator: torch.Generator
                 ) -> Algorithm:
    """CHOCO-gossip: average the nodes' initial parameters with compressed messages.

    q = C(x - x_hat);  x_hat_j <- x_hat_j + q_j;  x <- x + gamma (sum_j w_ij x_hat_j - x_hat).
    """
    return _choco(gamma, compressor, generator, None)


def choco_sgd(stepsize: float, gamma: float, compressor: Compressor,
              generator: torch.Generator) -> Algorithm:
    """CHOCO-SGD: the gossip step of ``choco_gossip``, then x <- x - a grad f_i(x)."""
    return _choco(gamma, compressor, generator, stepsize)
