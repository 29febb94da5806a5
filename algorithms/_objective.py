"""Local objectives of learning nodes: where gradient values come from.

A ``BatchObjective`` walks the node's training batches, epoch after epoch, and
asks its ``batch_gradient`` for the gradient at x on the next one: a torch model
with its loss (``torch_gradient``), or an external agent that holds model and data.

Torch gradients come from ``torch.func.functional_call`` on detached copies of the
parameters, inside one synchronous function: grad mode is thread-local and every
node shares the thread, so no grad-mode context is ever held across an ``await``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from ._steps import Params

BatchGradient = Callable[[Params, Any], Awaitable[Params]]


class BatchObjective:
    """The gradient at x on the next training batch; ``epoch_end`` tells whether that
    batch was the last of its epoch.

    Args:
        data: batches, one per gradient; iterated again at each epoch's end.
        batch_gradient: the gradient at x on a batch.
    """

    def __init__(self, data: Iterable[Any], batch_gradient: BatchGradient) -> None:
        self._batches = _epoch_batches(data)
        self._batch_gradient = batch_gradient
        self.epoch_end = False

    async def gradient(self, x: Params) -> Params:
        """The gradient at ``x`` on the next batch.

        Raises:
            ValueError: the data yields no batch.
        """
        batch, self.epoch_end = next(self._batches)
        return await self._batch_gradient(x, batch)


def torch_gradient(model: nn.Module, loss: nn.Module, x: Params, batch: Any) -> Params:
    """The gradient of ``loss(model(inputs), targets)`` at parameters ``x`` (by name)."""
    inputs, targets = batch
    leaves = {name: value.detach().requires_grad_() for name, value in x.items()}
    with torch.enable_grad():
        value = loss(functional_call(model, leaves, (inputs,)), targets)
        grads = torch.autograd.grad(value, list(leaves.values()))
    return dict(zip(leaves, grads, strict=True))


def dataset_loss(model: nn.Module, loss: nn.Module, data: Iterable[Any]) -> float:
    """Mean loss over all samples of ``data`` (NVFlare's ``compute_loss_over_dataset``)."""
    total, count, training = 0.0, 0, model.training
    model.eval()
    try:
        with torch.no_grad():
            for inputs, targets in data:
                total += float(loss(model(inputs), targets)) * len(inputs)
                count += len(inputs)
    finally:
        model.train(training)
    return total / max(count, 1)


def _epoch_batches(data: Iterable[Any], epoch: Callable[[Any], Iterator[Any]] = iter
                   ) -> Iterator[tuple[Any, bool]]:
    """Yield (batch, is the last of its epoch) forever, starting a new epoch (``epoch(data)``:
    its batches) when one ends."""
    end = object()
    while True:
        batches = epoch(data)
        batch = next(batches, end)
        if batch is end:
            raise ValueError("the train dataloader yields no batch")
        while batch is not end:
            following = next(batches, end)
            yield batch, following is end
            batch = following
