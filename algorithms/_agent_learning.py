"""Learning nodes whose local computation an external agent does: it owns model and data.

The node runs the one step loop (exchange, mix, ``query`` then ``update``) and
asks its agent, through ``batch_gradient``, for what needs the model or the data:

    init        {"extra", **init_data}   -> {"params": {name: tensor}, "batches_per_epoch": n}
    local_step  {"params": x}            -> {name: gradient of the loss at x, next batch}
    evaluate    {"params": x}            -> {"train": loss, "test"?: loss, "val"?: loss,
                                             "accuracy"?: test accuracy}

The arithmetic is the in-process one: the loop asks for the gradient where the
algorithm queries it, and the agent computes it on its next batch. Losses are
recorded where the in-process loop records them; being synchronous there, they
are evaluated by the agent at the next await (before the next step, or after
the run).

Every result is checked (``_agent_results``) before it is used: the initial
parameters set the spec (names, shapes, dtypes) each gradient must match, with
finite values, and losses must be finite. Every task must be answered within
``task_wait_time``, by default half the sync timeout: the neighbours wait at most
``sync_timeout`` for this node's next value, so a silent agent is found, and named,
before they give up on the node.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from peerflow.actors import DEFAULT_SYNC_TIMEOUT
from peerflow.agents import AgentHost, AgentResultError, AgentServer, LinkSettings

from ._agent_results import check_init_params, check_losses, check_params
from ._executors import LEARNING_EXECUTORS
from ._learning import LearningExecutor, LossRecord
from ._steps import Params

_SEQUENCES = {"train": "train_loss_sequence", "test": "test_loss_sequence",
              "val": "val_loss_sequence"}


class AgentLearning(AgentHost, LearningExecutor):
    """A learning node whose gradients and losses come from its agent.

    Combine with an algorithm's executor (``AGENT_LEARNING_EXECUTORS`` does);
    the node never holds the model or the data.

    Args:
        agent_id: the id the agent must present.
        listen: where the agent connects, ``"host:port"``; port 0 picks a free one.
        init_data: sent to the agent with the "init" task (what problem, which part).
        settings: the agent link's waits and bounds (NVFlare's defaults if None); a
            ``task_wait_time`` of None becomes half of ``sync_timeout``.
        sync_timeout: seconds to wait for all neighbours' values of one iteration.

    Raises:
        ValueError: a bad address or agent id.
    """

    def __init__(self, agent_id: str, listen: str | tuple[str, int] = "127.0.0.1:0", *,
                 init_data: dict[str, Any] | None = None, settings: LinkSettings | None = None,
                 sync_timeout: float = DEFAULT_SYNC_TIMEOUT, max_ahead: int = 1000) -> None:
        super().__init__(None, None, (), sync_timeout=sync_timeout,  # type: ignore[arg-type]
                         max_ahead=max_ahead)
        settings = settings or LinkSettings()
        if settings.task_wait_time is None:
            settings = dataclasses.replace(settings, task_wait_time=sync_timeout / 2)
        self.agent = AgentServer(agent_id, listen, settings)
        self.init_data = dict(init_data or {})
        self._x0: Params = {}
        self._unrecorded: list[tuple[int, float, Params]] = []

    def trainable(self) -> Params:
        """The agent's initial parameters (from the "init" task)."""
        return self._x0

    async def _pre_algorithm_run(self, extra: dict[str, Any]) -> None:
        reply = await self.agent.run_task("init", {"extra": extra, **self.init_data})
        if not isinstance(reply, dict) or not isinstance(reply.get("params"), dict):
            raise AgentResultError(f"{self._where()} result of 'init': expected "
                                   f"{{params, batches_per_epoch}}, got {reply!r:.100}")
        self._x0 = check_init_params(self._where(), reply["params"])
        batches = reply.get("batches_per_epoch")
        if isinstance(batches, bool) or not isinstance(batches, int) or batches < 1:
            raise AgentResultError(f"{self._where()} result field 'init.batches_per_epoch': "
                                   f"expected an integer >= 1, got {batches!r}")
        self.train_dataloader = [(None, None)] * batches  # epoch ends where the agent's do
        self._unrecorded.clear()
        await super()._pre_algorithm_run(extra)
        await self._evaluate_unrecorded()

    async def batch_gradient(self, x: Params, batch: Any) -> Params:
        """The agent's gradient at ``x`` on its own next batch (``batch`` is a placeholder).

        Raises:
            AgentResultError: the gradient is not a finite tensor per parameter of
                ``x``, with its shape and dtype.
        """
        await self._evaluate_unrecorded()
        grads = await self.agent.run_task("local_step", {"params": x})
        return check_params(self._where(), "grads", grads, x)

    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        result = await super().run_algorithm(extra)
        await self._evaluate_unrecorded()  # the last losses, and the test accuracy with them
        return {**result, **self.to_result()}

    def to_result(self) -> dict[str, Any]:
        """The learning result, with the test accuracy the agent reported last (or None)
        and what it logged (``log_metric``): a controller in another process gets them."""
        return {**super().to_result(), "test_accuracy": self.test_accuracy,
                "agent_metrics": self.agent.metrics}

    def _record(self, iteration: int, elapsed: float, x: Params | None) -> None:
        self._unrecorded.append((iteration, elapsed, self._x0 if x is None else x))

    def _load(self, x: Params) -> None:
        """Nothing to load: the agent holds the model."""

    async def _evaluate_unrecorded(self) -> None:
        while self._unrecorded:
            iteration, elapsed, x = self._unrecorded.pop(0)
            losses = check_losses(self._where(),
                                  await self.agent.run_task("evaluate", {"params": x}))
            for key, name in _SEQUENCES.items():
                if isinstance(losses.get(key), float):
                    getattr(self, name).append(LossRecord(iteration, elapsed, losses[key]))
            self.test_accuracy = losses.get("accuracy", self.test_accuracy)

    def _where(self) -> str:
        return f"agent {self.agent.agent_id!r} of node {self.id!r}"


AGENT_LEARNING_EXECUTORS: dict[str, type[AgentLearning]] = {
    name: type(f"Agent{base.__name__}", (AgentLearning, base), {"__module__": __name__})
    for name, base in LEARNING_EXECUTORS.items()
}
"""Agent-backed learning executors by command-line name: ``AgentDGDExecutor`` for "dgd"..."""
