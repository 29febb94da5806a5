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

from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple

import msgspec
import numpy as np
import torch

from peerflow.actors import DEFAULT_SYNC_TIMEOUT

from ._compress import Compressor, compress_tree, decompress_tree, node_generator, parse_compressor
from ._consensus import ValueHistory, _iterations
from ._loop import NO_OBJECTIVE, Algorithm, StepExecutor
from ._steps import Params, _step
from ._trees import Tree, tree_map
from ._tunables import CompressTunables

__all__ = ["ChocoGossipExecutor", "ChocoState", "choco_gossip", "choco_sgd"]


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


class ChocoGossipExecutor(ValueHistory, StepExecutor):
    """Averages a vector with CHOCO-gossip for ``extra["iterations"]`` iterations;
    ``extra``: ``CompressTunables``' gamma and compress. Random compressors draw from a
    generator seeded by the node's name. ``bytes_sequence`` holds the bytes the node had
    sent after each iteration (0 first), as its transport counted them.

    Args:
        initial_value: the node's vector (a float64 copy is kept).
        sync_timeout: seconds to wait for all neighbours' values of one iteration.
    """

    tunables: ClassVar[type[CompressTunables]] = CompressTunables

    def __init__(self, initial_value: Any, sync_timeout: float = DEFAULT_SYNC_TIMEOUT,
                 max_ahead: int = 1000) -> None:
        super().__init__(sync_timeout=sync_timeout, max_ahead=max_ahead)
        self.initial_value = self.current_value = np.array(initial_value, dtype=np.float64)
        self.value_history: list[Any] = [self.initial_value]
        self.bytes_sequence: list[int] = [0]

    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        try:
            tuned = self.tunables.from_extra(extra)
        except msgspec.ValidationError as exc:
            raise ValueError(f"extra: {exc}") from None
        algorithm = choco_gossip(tuned.gamma, parse_compressor(tuned.compress),
                                 node_generator(self.id))
        before = self.sent_bytes()

        def observe(state: ChocoState) -> None:
            self.value_history.append(state.x.numpy().copy())
            self.bytes_sequence.append(self.sent_bytes() - before)

        x0 = torch.from_numpy(self.current_value.copy())
        await self.run_steps(algorithm, algorithm.init(x0), NO_OBJECTIVE, _iterations(extra),
                             observe)
        self.current_value = self.value_history[-1]
        return self.to_result()

    def to_result(self) -> dict[str, Any]:
        """This node's value history and the bytes it had sent after each iteration."""
        return {**super().to_result(), "bytes_sequence": self.bytes_sequence,
                "bytes_sent": self.bytes_sequence[-1]}

    def load_result(self, result: Mapping[str, Any]) -> None:
        """Restore what ``to_result`` gave (see ``ValueHistory.load_result``).

        Raises:
            KeyError: the result lacks a field.
        """
        super().load_result(result)
        self.value_history = [np.asarray(x, dtype=np.float64) for x in self.value_history]
        self.initial_value, self.current_value = self.value_history[0], self.value_history[-1]
        self.bytes_sequence = [int(n) for n in result["bytes_sequence"]]
