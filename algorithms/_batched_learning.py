"""Learning nodes run batched: one model template, every node's parameters stacked.

Gradients are ``vmap(grad(loss of functional_call))`` of the first node's model with
every node's parameters and batch; batches come from each node's own loaders, read
as its executor reads them (the same draws, so seeded shuffles give the same
batches; ``_batched_data``), then stacked. Losses are recorded in bulk at the
iterations the executors would record them, through the same loaders; the
executors are left as an actor run leaves them (state, loss sequences, model), so
reports read them alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch.func import functional_call, grad

from ._batched import Mixer, stack, unstack, vectorized
from ._batched_data import epoch
from ._consensus import _iterations
from ._learning import LearningExecutor, record_due
from ._loop import Algorithm
from ._losses import LossRecord
from ._objective import _epoch_batches

EVAL_CHUNK = 1 << 22
"""Samples (over all nodes) one batched evaluation takes at a time, bounding its memory."""


class BatchedLearning:
    """The nodes' model, loss and data as one batched program.

    Args:
        executors: the nodes' executors, in the mixing matrix's node order; all run
            the same model class and loss (``batched_obstacle`` checked it).
    """

    def __init__(self, executors: Sequence[LearningExecutor]) -> None:
        self.executors = list(executors)
        template = self.executors[0]
        self.model, loss = template.model, template.loss

        def value(x: Any, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            return loss(functional_call(self.model, x, (inputs,)), targets)

        self._gradient = vectorized(grad(value))
        self._loss = vectorized(value)

    def run(self, algorithm: Algorithm, extra: dict[str, Any], mixer: Mixer,
            on_iteration: Callable[[int], None]) -> Any:
        """Run ``algorithm`` on every node; return the final stacked state."""
        iterations, start = _iterations(extra), time.perf_counter()
        for ex in self.executors:
            for _, record in ex.evaluated():
                record.clear()
        self.record(range(len(self.executors)), 0, 0.0, None)
        state = stack([algorithm.init(ex.trainable()) for ex in self.executors])
        batches = [_epoch_batches(ex.train_dataloader, epoch) for ex in self.executors]
        send, query, update = (None if f is None else vectorized(f) for f in
                               (algorithm.send, algorithm.query, algorithm.update))
        every = self.executors[0].record_every
        watched = [k for k, ex in enumerate(self.executors) if ex.on_step is not None]
        for t in range(iterations):
            payload = state if send is None else send(state)
            mixed = mixer(t, payload)
            at, pending = query(state, mixed)
            drawn = [next(node) for node in batches]
            state = update(pending, self.gradient(at, [batch for batch, _ in drawn]))
            due = [k for k, (_, end) in enumerate(drawn)
                   if record_due(every, t, end) or t == iterations - 1]
            if due:
                self.record(due, t + 1, time.perf_counter() - start, state.x)
            for k in watched:  # an on_step callback sees its own node's state
                self.executors[k].on_step(t, unstack(state, k))
            on_iteration(t)
        self.finish(state, iterations)
        return state

    def gradient(self, x: Any, batches: Sequence[Any]) -> Any:
        """Every node's gradient at its ``x`` on its batch, stacked.

        Raises:
            ValueError: the nodes' batches differ in shape.
        """
        inputs, targets = (_stacked([batch[k] for batch in batches]) for k in (0, 1))
        return self._gradient(x, inputs, targets)

    def record(self, nodes: Iterable[int], iteration: int, elapsed: float,
               x: Any | None) -> None:
        """Append the losses of ``nodes`` at ``x``, their parameters after ``iteration``
        iterations (None: their initial parameters)."""
        nodes = list(nodes)
        if x is None:
            x = stack([self.executors[k].trainable() for k in nodes])
        else:
            x = {name: value[nodes] for name, value in x.items()}
        for kind in range(3):
            loaders = [self.executors[k].evaluated()[kind][0] for k in nodes]
            if loaders[0] is None:
                continue
            losses = self.dataset_losses(x, loaders)
            for k, loss in zip(nodes, losses, strict=True):
                self.executors[k].evaluated()[kind][1].append(LossRecord(iteration, elapsed, loss))

    def dataset_losses(self, x: Any, loaders: Sequence[Iterable[Any]]) -> list[float]:
        """Each node's mean loss over its loader (as ``dataset_loss``: batch means times
        batch sizes, summed in float64), at its row of stacked ``x``."""
        batches = [list(epoch(loader)) for loader in loaders]
        totals = torch.zeros(len(loaders), dtype=torch.float64)
        counts = 0
        training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                for k in range(len(batches[0])):
                    size = len(batches[0][k][0])
                    totals += self._chunked_losses(x, [nodes[k] for nodes in batches]) * size
                    counts += size
        finally:
            self.model.train(training)
        return (totals / max(counts, 1)).tolist()

    def _chunked_losses(self, x: Any, batches: Sequence[Any]) -> torch.Tensor:
        chunk = max(1, EVAL_CHUNK // max(1, len(batches[0][0])))
        parts = []
        for lo in range(0, len(batches), chunk):
            part = {name: value[lo:lo + chunk] for name, value in x.items()}
            inputs, targets = (_stacked([b[j] for b in batches[lo:lo + chunk]]) for j in (0, 1))
            parts.append(self._loss(part, inputs, targets).to(torch.float64))
        return torch.cat(parts)

    def finish(self, state: Any, iterations: int) -> None:
        """Leave every executor as its own run would: final state, model, iteration."""
        for k, ex in enumerate(self.executors):
            ex.state = unstack(state, k)
            ex._load(ex.state.x)
            ex.iteration = iterations - 1 if iterations else None

    def results(self, iterations: int) -> list[dict[str, Any]]:
        """Each node's result, as its ``run_algorithm`` returns it."""
        return [{**ex.to_result(), "iterations": iterations} for ex in self.executors]


def _stacked(tensors: list[torch.Tensor]) -> torch.Tensor:
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"the nodes' batches differ in shape ({sorted(shapes)[:3]}): a "
                         "batched run needs every node's batches to stack")
    return torch.stack(tensors)

