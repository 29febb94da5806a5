"""Push-sum: averaging on directed graphs with weights the sender sets.

Push mixing (``_mixers``) keeps sums: the ratio x / w of two pushed quantities
(w(0) = 1) converges to the true average where row-stochastic consensus converges
to a stationary-distribution-weighted one.
"""

from __future__ import annotations

from typing import Any

from peerflow.actors import DEFAULT_SYNC_TIMEOUT

from ._consensus import ValueHistory, _iterations
from ._loop import NO_OBJECTIVE, StepExecutor, push_sum
from ._mixers import push_mix, push_share

__all__ = ["PushSumExecutor", "push_mix", "push_share"]


class PushSumExecutor(ValueHistory, StepExecutor):
    """Averages a value over a directed graph for ``extra["iterations"]`` iterations.

    Each iteration pushes ``x`` and the weight ``w`` (w(0) = 1) and records the
    estimate ``x / w`` in ``value_history``. The in-neighbours' config weights are
    not used: only the out-degree matters.

    Args:
        initial_value: a number, numpy array or torch tensor.
        sync_timeout: seconds to wait for all neighbours' values of one iteration.
    """

    def __init__(self, initial_value: Any, sync_timeout: float = DEFAULT_SYNC_TIMEOUT,
                 max_ahead: int = 1000) -> None:
        super().__init__(sync_timeout=sync_timeout, max_ahead=max_ahead)
        self.initial_value = initial_value
        self.current_value = initial_value
        self.push_weight = 1.0
        self.value_history: list[Any] = [initial_value]

    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        await self.run_steps(_PUSH_SUM, _PUSH_SUM.init(self.initial_value), NO_OBJECTIVE,
                             _iterations(extra), self._observe)
        self.bytes_sent = self.sent_bytes()
        return self.to_result()

    def _observe(self, state: dict[str, Any]) -> None:
        """Keep the pushed weight and record the estimate x / w."""
        self.push_weight = state["w"]
        self.current_value = state["x"] / state["w"]
        self.value_history.append(self.current_value)


_PUSH_SUM = push_sum()
