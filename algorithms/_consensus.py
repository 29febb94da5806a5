"""Consensus: x(t+1) = W x(t), NVFlare's ``ConsensusExecutor`` recursion exactly."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from peerflow.actors import DEFAULT_SYNC_TIMEOUT

from ._loop import NO_OBJECTIVE, StepExecutor, consensus


class ValueHistory:
    """The result of an averaging executor: its value at every iteration, the initial first."""

    value_history: list[Any]
    initial_value: Any
    current_value: Any
    bytes_sent = 0
    """What the node sent in its run, as its transport counted it (0: not counted)."""

    def to_result(self) -> dict[str, Any]:
        """This node's result: its value history and the bytes it sent."""
        return {"value_history": self.value_history, "bytes_sent": self.bytes_sent}

    def load_result(self, result: Mapping[str, Any]) -> None:
        """Restore what ``to_result`` gave, on another executor of the same node: the
        history, and the initial and current values.

        Raises:
            KeyError: the result has no value history.
        """
        self.value_history = list(result["value_history"])
        self.initial_value = self.value_history[0]
        self.current_value = self.value_history[-1]
        self.bytes_sent = int(result.get("bytes_sent", 0))


class ConsensusExecutor(ValueHistory, StepExecutor):
    """Averages a value with its in-neighbours for ``extra["iterations"]`` iterations.

    Args:
        initial_value: a number, numpy array or torch tensor (random in [0, 1) if None).
        sync_timeout: seconds to wait for all neighbours' values of one iteration.
    """

    def __init__(self, initial_value: Any = None, sync_timeout: float = DEFAULT_SYNC_TIMEOUT,
                 max_ahead: int = 1000) -> None:
        super().__init__(sync_timeout=sync_timeout, max_ahead=max_ahead)
        if initial_value is None:
            initial_value = random.random()
        self.initial_value = initial_value
        self.current_value = initial_value
        self.value_history: list[Any] = [initial_value]

    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        self.current_value = await self.run_steps(_CONSENSUS, self.current_value, NO_OBJECTIVE,
                                                  _iterations(extra), self.value_history.append)
        self.bytes_sent = self.sent_bytes()
        return self.to_result()


_CONSENSUS = consensus()


def _iterations(extra: dict[str, Any]) -> int:
    iterations = extra.get("iterations")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"extra['iterations'] must be an integer >= 0, got {iterations!r}")
    return iterations
