"""Local training on one site of a built-in problem, and the global model's metrics.

``ProblemTrainer`` is the in-process trainer of ``peerflow simulate fedavg`` and
the one ``examples/fedavg_trainer.py`` runs behind its agent: the same model,
data and steps either way. It loads the global weights, runs ``local_epochs``
epochs of plain SGD (p -= stepsize * grad) over its site's data, and returns the new weights with
``NUM_STEPS_CURRENT_ROUND`` (the optimizer steps it took) and its mean train loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from peerflow.agents import RC, MetaKey

from ._fedavg import Weights
from ._fedavg_sites import TrainOutput
from ._learning import dataset_loss
from ._problems import Problem, accuracy, loader


def model_weights(model: torch.nn.Module) -> Weights:
    """A model's trainable parameters as numpy arrays, by name."""
    return {name: p.detach().cpu().numpy().copy() for name, p in model.named_parameters()}


def load_weights(model: torch.nn.Module, weights: Mapping[str, Any]) -> None:
    """Copy ``weights`` (name -> array) into the model's parameters.

    Raises:
        KeyError: a parameter has no weights.
    """
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.tensor(np.asarray(weights[name])))


class ProblemTrainer:
    """Site ``site`` of ``problem``: its model and its training data.

    Args:
        problem: the built-in problem.
        site: the site's index (its part of the data).
        local_epochs: epochs over the site's data per round.
        stepsize: the SGD step size (the problem's when None).
    """

    def __init__(self, problem: Problem, site: int, *, local_epochs: int = 1,
                 stepsize: float | None = None) -> None:
        if not 0 <= site < problem.nodes:
            raise ValueError(f"site index {site} is not in 0..{problem.nodes - 1}")
        if local_epochs < 1:
            raise ValueError(f"local_epochs must be >= 1, got {local_epochs}")
        parts = problem.node_kwargs(site)
        self.model, self.loss = parts["model"], parts["loss"]
        self.data = parts["train_dataloader"]
        self.local_epochs = local_epochs
        self.stepsize = problem.stepsize if stepsize is None else stepsize

    def __call__(self, weights: Weights, meta: dict[str, Any]) -> TrainOutput:
        """Train from ``weights``; (RC.OK, {NUM_STEPS_CURRENT_ROUND, train_loss}, new weights)."""
        load_weights(self.model, weights)
        params = list(self.model.parameters())
        steps, total = 0, 0.0
        for _ in range(self.local_epochs):
            for features, labels in self.data:
                self.model.zero_grad(set_to_none=True)
                loss = self.loss(self.model(features), labels)
                loss.backward()
                with torch.no_grad():  # plain SGD: torch.optim's first step imports
                    for p in params:   # torch._dynamo, seconds at start and at exit
                        p -= self.stepsize * p.grad
                steps, total = steps + 1, total + float(loss.detach())
        meta = {MetaKey.NUM_STEPS_CURRENT_ROUND: steps, "train_loss": total / steps}
        return RC.OK, meta, model_weights(self.model)


def global_metrics(problem: Problem, weights: Mapping[str, Any]) -> dict[str, float]:
    """The global model's mean train loss over every site's data, its test loss and, for a
    classification problem, its test accuracy."""
    model, loss = problem.node_model(0), problem.loss()
    load_weights(model, weights)
    train = [dataset_loss(model, loss, loader(part, None)) for part in problem.train]
    test = loader(problem.test, None)
    metrics = {"train_loss": float(np.mean(train)), "test_loss": dataset_loss(model, loss, test)}
    if problem.classification:
        metrics["test_accuracy"] = accuracy(model, test)
    return metrics


def problem_weights(problem: Problem) -> Weights:
    """The problem's initial model's weights (every site's, for a same-init problem)."""
    return model_weights(problem.node_model(0))
