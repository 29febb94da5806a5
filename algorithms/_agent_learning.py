"""Learning nodes whose local computation an external agent does: it owns model and data.

The node runs the generic learning loop (exchange, mix, ``algorithm.update``) and
asks its agent, through ``local_update``, for what needs the model or the data:

    init        {"extra", **init_data}   -> {"params": {name: tensor}, "batches_per_epoch": n}
    local_step  {"params": x}            -> {name: gradient of the loss at x, next batch}
    evaluate    {"params": x}            -> {"train": loss, "test"?: loss, "val"?: loss,
                                             "accuracy"?: test accuracy}

The arithmetic is the in-process one: ``update`` is a pure function that asks
for one gradient, so it is run once to learn where the gradient is wanted, and
once more with the agent's gradient (nothing of the first run is kept). Losses
are recorded where the in-process loop records them; being synchronous there,
they are evaluated by the agent at the next await (before the next step, or
after the run).
"""

from __future__ import annotations

from typing import Any

import torch

from peerflow.actors import AgentHost, AgentProtocolError, AgentServer, LinkSettings

from ._learning import LEARNING_EXECUTORS, LearningExecutor
from ._steps import Algorithm, Params, Tree

_SEQUENCES = {"train": "train_loss_sequence", "test": "test_loss_sequence",
              "val": "val_loss_sequence"}


class _GradientWanted(Exception):
    """Raised by the first, probing run of ``update`` where it asks for a gradient."""


class AgentLearning(AgentHost, LearningExecutor):
    """A learning node whose gradients and losses come from its agent.

    Combine with an algorithm's executor (``AGENT_LEARNING_EXECUTORS`` does);
    the node never holds the model or the data.

    Args:
        agent_id: the id the agent must present.
        listen: where the agent connects, ``"host:port"``; port 0 picks a free one.
        init_data: sent to the agent with the "init" task (what problem, which part).
        settings: the agent link's waits and bounds (NVFlare's defaults if None).
        sync_timeout: seconds to wait for all neighbours' values of one iteration.

    Raises:
        ValueError: a bad address or agent id.
    """

    def __init__(self, agent_id: str, listen: str | tuple[str, int] = "127.0.0.1:0", *,
                 init_data: dict[str, Any] | None = None, settings: LinkSettings | None = None,
                 sync_timeout: float = 10.0, max_ahead: int = 1000) -> None:
        super().__init__(None, None, (), sync_timeout=sync_timeout,  # type: ignore[arg-type]
                         max_ahead=max_ahead)
        self.agent = AgentServer(agent_id, listen, settings)
        self.init_data = dict(init_data or {})
        self._x0: Params = {}
        self._unrecorded: list[tuple[float, Params]] = []

    def trainable(self) -> Params:
        """The agent's initial parameters (from the "init" task)."""
        return self._x0

    async def _pre_algorithm_run(self, extra: dict[str, Any]) -> None:
        reply = await self.agent.run_task("init", {"extra": extra, **self.init_data})
        if not isinstance(reply, dict) or not isinstance(reply.get("params"), dict):
            raise AgentProtocolError(f"agent {self.agent.agent_id!r}: init must return "
                                     f"{{params, batches_per_epoch}}, got {reply!r:.100}")
        self._x0 = reply["params"]
        batches = reply.get("batches_per_epoch")
        if isinstance(batches, bool) or not isinstance(batches, int) or batches < 1:
            raise AgentProtocolError(f"agent {self.agent.agent_id!r}: batches_per_epoch must "
                                     f"be an integer >= 1, got {batches!r}")
        self.train_dataloader = [(None, None)] * batches  # epoch ends where the agent's do
        self._unrecorded.clear()
        await super()._pre_algorithm_run(extra)
        await self._evaluate_unrecorded()

    async def local_update(self, algorithm: Algorithm, mixed: Tree, batch: Any) -> Any:
        await self._evaluate_unrecorded()
        wanted: list[Params] = []

        def probe(x: Params) -> Params:
            wanted.append(x)
            raise _GradientWanted

        try:
            return algorithm.update(self.state, mixed, probe)
        except _GradientWanted:
            pass
        grads = await self.agent.run_task("local_step", {"params": wanted[0]})
        _check_gradients(self.agent.agent_id, grads, wanted[0])
        return algorithm.update(self.state, mixed, lambda x: grads)

    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        result = await super().run_algorithm(extra)
        await self._evaluate_unrecorded()  # the last losses, and the test accuracy with them
        return {**result, **self.to_result()}

    def to_result(self) -> dict[str, Any]:
        """The learning result, with the test accuracy the agent reported last (or None)."""
        return {**super().to_result(), "test_accuracy": self.test_accuracy}

    def _record(self, elapsed: float, x: Params | None) -> None:
        self._unrecorded.append((elapsed, self._x0 if x is None else x))

    def _load(self, x: Params) -> None:
        """Nothing to load: the agent holds the model."""

    async def _evaluate_unrecorded(self) -> None:
        while self._unrecorded:
            elapsed, x = self._unrecorded.pop(0)
            losses = await self.agent.run_task("evaluate", {"params": x})
            if not isinstance(losses, dict) or not isinstance(losses.get("train"), float):
                raise AgentProtocolError(f"agent {self.agent.agent_id!r}: evaluate must return "
                                         f"{{train, test?, val?, accuracy?}}, got "
                                         f"{losses!r:.100}")
            for key, name in _SEQUENCES.items():
                if isinstance(losses.get(key), float):
                    getattr(self, name).append((elapsed, losses[key]))
            self.test_accuracy = losses.get("accuracy", self.test_accuracy)


def _check_gradients(agent_id: str, grads: Any, x: Params) -> None:
    if (not isinstance(grads, dict) or grads.keys() != x.keys()
            or not all(isinstance(g, torch.Tensor) for g in grads.values())):
        got = sorted(grads) if isinstance(grads, dict) else type(grads).__name__
        raise AgentProtocolError(f"agent {agent_id!r}: local_step must return a tensor per "
                                 f"parameter {sorted(x)}, got {got}")


AGENT_LEARNING_EXECUTORS: dict[str, type[AgentLearning]] = {
    name: type(f"Agent{base.__name__}", (AgentLearning, base), {"__module__": __name__})
    for name, base in LEARNING_EXECUTORS.items()
}
"""Agent-backed learning executors by command-line name: ``AgentDGDExecutor`` for "dgd"..."""
