"""The sites of a federated averaging job: a Python callable, or an external trainer.

A site answers the controller's "train" task ``{"data": weights, "meta": {...}}``
with ``{"data": new weights, "meta": ...}``. Its trainer returns what the
seed's ``train(task.data)`` returns, ``(rc, meta, weights)``; a return code
other than OK panics the site, and so aborts the job, naming the site and the
code. ``TrainerExecutor`` calls a function in this process (library use, tests);
``AgentTrainer`` relays the task to an external trainer through its agent, as
NVFlare's TaskExchanger does.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import numpy as np

from peerflow.actors import ActorError, SyncAlgorithmExecutor
from peerflow.agents import RC, AgentServer, MetaKey, TaskExchanger
from peerflow.transport import Envelope

from ._fedavg import TRAIN_TASK, Weights

TrainOutput = tuple[str, Mapping[str, Any] | None, Any]
"""What a trainer returns: (return code, meta, new weights)."""
Trainer = Callable[[Weights, dict[str, Any]], TrainOutput | Awaitable[TrainOutput]]
"""An in-process trainer: ``trainer(weights, meta) -> (rc, meta, new weights)``, or a
coroutine function returning that."""


class TrainerFailed(ActorError):
    """A trainer returned a code other than OK, or something that is not (rc, meta, data)."""


class _TrainSite(SyncAlgorithmExecutor):
    """A site: "config" as every node, then the "train" task of each round."""

    task_name = TRAIN_TASK

    async def handle(self, envelope: Envelope) -> Any:
        if envelope.topic == self.task_name:  # as "run" is: a failure panics the site
            return await self._run(envelope.body)
        return await super().handle(envelope)

    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        rc, meta, data = self._output(await self.train(extra))
        round_ = (extra.get("meta") or {}).get(MetaKey.CURRENT_ROUND)
        if rc != RC.OK:
            raise TrainerFailed(f"site {self.id!r}: the trainer returned {rc} for task "
                                f"{self.task_name!r} in round {round_}")
        return {"data": data, "meta": dict(meta or {})}

    async def train(self, task: dict[str, Any]) -> Any:
        """Run the trainer on ``task``; its (rc, meta, data)."""
        raise NotImplementedError

    def _output(self, output: Any) -> TrainOutput:
        if not isinstance(output, tuple | list) or len(output) != 3:
            raise TrainerFailed(f"site {self.id!r}: the trainer must return (rc, meta, "
                                f"weights), got {type(output).__name__}")
        rc, meta, data = output
        return str(rc), meta, data


class TrainerExecutor(_TrainSite):
    """A site whose "train" task runs ``trainer`` in this process.

    The trainer gets its own copy of the global weights (writable: it may train
    them in place), and the task's meta (``current_round``, ``total_round``).
    """

    def __init__(self, trainer: Trainer) -> None:
        super().__init__()
        self.trainer = trainer

    async def train(self, task: dict[str, Any]) -> Any:
        # In memory the controller's weights come by reference, shared by every site.
        weights = {name: np.array(value, copy=True) for name, value in task["data"].items()}
        output = self.trainer(weights, dict(task.get("meta") or {}))
        return await output if inspect.isawaitable(output) else output


class AgentTrainer(_TrainSite, TaskExchanger):
    """A site whose "train" task an external trainer does, through its agent.

    Same arguments as ``TaskExchanger``.
    """

    async def train(self, task: dict[str, Any]) -> Any:
        return await agent_train(self.agent, self.task_name, task)


async def agent_train(server: AgentServer, name: str, task: Mapping[str, Any]) -> TrainOutput:
    """Hand one train task (its data and meta) to the agent; its (rc, meta, weights).

    The only call to the agent. The result's meta comes back with it, so an agent
    site is weighed by the ``MetaKey.NUM_STEPS_CURRENT_ROUND`` its trainer reports
    (1 if none). A code other than OK raises ``AgentFailed`` naming the agent, its
    node and the code.
    """
    result = await server.run_task_result(name, task["data"], task.get("meta"))
    return result.return_code, result.meta, result.data
