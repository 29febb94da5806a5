"""Asynchronous learning: AD-PSGD and gradient-push, each node at its own pace.

They are learning executors (a torch model, its data, the loss records and result of
``LearningExecutor``) that run on the asynchronous executor (``AsyncAlgorithmExecutor``:
latest values, no barrier) instead of the step loop. Losses are recorded with the
seconds since the start, so a slow node's effect shows against wall time as well as
against ticks; the last record follows the drain, on the final parameters.

- AD-PSGD (Lian et al. 2018): at each wake, the gradient at the node's parameters on
  its next batch, a pairwise gossip average with a random neighbour (``_gossip``),
  then x <- x - a * gradient.
- Gradient-push (Nedic & Olshevsky), asynchronous and robust: absorb the pushed mass
  (``_async``), x <- x - a * w * grad f_i(x / w), push shares as running sums.
"""

from __future__ import annotations

import time
from typing import Any

from peerflow.actors import DEFAULT_MAX_WAIT, AsyncAlgorithmExecutor, TickSchedule

from ._async import (
    gradient_push_step,
    push_sum_absorb,
    push_sum_estimate,
    push_sum_init,
    push_sum_share,
)
from ._async_averaging import Partners, _values, undirected
from ._consensus import _iterations
from ._executors import _stepsize
from ._gossip import (
    gossip_absorb,
    gossip_answer,
    gossip_gradient_step,
    gossip_init,
    gossip_messages,
    gossip_offer,
)
from ._learning import FinalState, LearningExecutor
from ._objective import BatchObjective


class AsyncLearningExecutor(LearningExecutor, AsyncAlgorithmExecutor):
    """A learning executor that runs asynchronously (subclasses give ``run_algorithm``).

    Args: those of ``LearningExecutor``, and
        max_wait: seconds to wait for news before stepping anyway.
        schedule: run on this seeded schedule instead of at the node's own pace.
        seed: seed of the node's own random draws (gossip partners).
    """

    def __init__(self, *args: Any, max_wait: float = DEFAULT_MAX_WAIT,
                 schedule: TickSchedule | None = None, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not max_wait >= 0:
            raise ValueError(f"max_wait must be >= 0 seconds, got {max_wait}")
        self.max_wait, self.schedule, self.seed = max_wait, schedule, seed

    def _begin(self, extra: dict[str, Any]) -> tuple[float, list[int] | range]:
        """The step size and the ticks; the objective and loss records set for them."""
        stepsize, ticks = _stepsize(extra), self.ticks(_iterations(extra))
        self._objective = BatchObjective(self.train_dataloader, self.batch_gradient)
        self._t, self._last, self._start = -1, len(ticks), time.perf_counter()
        return stepsize, ticks

    def _finish(self, ticks: list[int] | range) -> dict[str, Any]:
        return {**self.to_result(), "iterations": len(ticks), "clock": self.clock}


class ADPSGDExecutor(AsyncLearningExecutor):
    """AD-PSGD: asynchronous decentralized SGD with pairwise gossip; ``extra``:
    iterations (ticks per node), stepsize."""

    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        stepsize, ticks = self._begin(extra)
        neighbors, partners = undirected(self), Partners(self, self.seed)
        state = gossip_init(self.trainable())
        for tick in ticks:
            news = partners.heard(await self.read(tick))
            state = gossip_answer(gossip_absorb(state, news), self.id, news)
            gradient = await self._objective.gradient(state.x)
            state = gossip_offer(state, partners.draw(tick, neighbors))
            self.post(tick, gossip_messages(state, neighbors), final=tick == ticks[-1])
            self._observe(gossip_gradient_step(state, stepsize, gradient))
            state = self.state
        last = ticks[-1] if ticks else -1
        self._observe(gossip_absorb(state, _values(await self.drain(last))))
        return self._finish(ticks)


class GradientPushExecutor(AsyncLearningExecutor):
    """Asynchronous robust gradient-push, for directed graphs; ``extra``: iterations
    (ticks per node), stepsize. ``state.x`` is the estimate x / w after each tick."""

    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        stepsize, ticks = self._begin(extra)
        state, out = push_sum_init(self.trainable()), self.out_neighbors
        for tick in ticks:
            news = _values(await self.read(tick))
            state = push_sum_absorb(state, news)
            gradient = await self._objective.gradient(push_sum_estimate(state))
            state = gradient_push_step(state, stepsize, gradient)
            if news or tick == ticks[0]:
                state = push_sum_share(state, len(out))[0]
            self.post(tick, dict.fromkeys(out, state.sent), final=tick == ticks[-1])
            self._observe(FinalState(push_sum_estimate(state)))
        state = push_sum_absorb(state, _values(await self.drain(ticks[-1] if ticks else -1)))
        self._observe(FinalState(push_sum_estimate(state)))
        return self._finish(ticks)


ASYNC_LEARNING_EXECUTORS: dict[str, type[AsyncLearningExecutor]] = {
    "ad-psgd": ADPSGDExecutor, "async-gradient-push": GradientPushExecutor}
"""The asynchronous learning executors by their command-line name."""

