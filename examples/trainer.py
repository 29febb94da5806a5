"""An external trainer: a plain, blocking script that owns its model and its data.

    peerflow simulate dgd --agent-command "python examples/trainer.py"

starts one copy of this script per node. Each node exchanges parameters with its
neighbours and mixes them; this script does the rest, on its own model and data:

    init        -> the initial parameters, and how many batches make an epoch
    local_step  -> the gradient of the loss at the given parameters, on the next batch
    evaluate    -> the train and test losses (and test accuracy) at the given parameters

The node checks every answer: a gradient needs each parameter's name, shape and dtype
(float64 for a float32 parameter is refused: cast here if you mean it), every value
finite, and losses must be finite floats; anything else aborts the run naming this
agent and the field. Each answer must come within the node's task_wait_time (by
default half its sync timeout). The node's address and this agent's id come from
the environment the launcher sets.
To reproduce the in-process run exactly, the model and data are the built-in problem
the "init" task names; a real trainer would load its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from peerflow.agents import Agent, AgentClosed, Task, TaskResult
from peerflow.algorithms import PROBLEMS, accuracy, dataset_loss


class Trainer:
    """One node's model and data; answers the node's tasks."""

    def answer(self, task: Task) -> Any:
        if task.task_name == "init":
            return self.init(**task.data)
        if task.task_name == "local_step":
            return self.gradient(task.data["params"])
        return self.evaluate(task.data["params"])

    def init(self, problem: str, nodes: int, seed: int, node_index: int, **_: Any) -> Any:
        parts = PROBLEMS[problem](nodes, seed).node_kwargs(node_index)
        self.model, self.loss = parts["model"], parts["loss"]
        self.train, self.test = parts["train_dataloader"], parts["test_dataloader"]
        self.train_eval = parts["train_eval_dataloader"]  # draws nothing from self.train's
        self.batches = self.endless()
        params = {name: p.detach().clone() for name, p in self.model.named_parameters()}
        return {"params": params, "batches_per_epoch": len(self.train)}

    def endless(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield from self.train  # a new shuffle every epoch

    def load(self, params: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, p in self.model.named_parameters():
                p.copy_(params[name])

    def gradient(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        self.load(params)
        inputs, targets = next(self.batches)
        self.model.zero_grad(set_to_none=True)
        self.loss(self.model(inputs), targets).backward()
        return {name: p.grad for name, p in self.model.named_parameters()}

    def evaluate(self, params: dict[str, torch.Tensor]) -> dict[str, float]:
        self.load(params)
        return {"train": dataset_loss(self.model, self.loss, self.train_eval),
                "test": dataset_loss(self.model, self.loss, self.test),
                "accuracy": accuracy(self.model, self.test)}


def main() -> None:
    torch.set_num_threads(1)  # one core per trainer process
    trainer = Trainer()
    with Agent() as agent:  # PEERFLOW_AGENT_ADDRESS and PEERFLOW_AGENT_ID say where and who
        while True:
            try:
                task = agent.get_task()
            except AgentClosed:  # the job is over (or the node is gone)
                break
            agent.submit_result(TaskResult(data=trainer.answer(task)))


if __name__ == "__main__":
    main()
