"""One executor loop for every learning algorithm, and NVFlare's executors on top of it.

Each iteration: draw the next batch, send ``algorithm.send(state)`` (clones, or push
shares, so nothing sent is ever changed afterwards), mix what came back with the
network's weights (or add up push shares), and ``algorithm.update`` with a gradient
function on that batch. Losses over the train, test and validation sets are
recorded at the start, at the end of every epoch and after the last iteration; the
model is loaded with the parameters recorded last, so it ends with the final ones.

Gradients come from ``torch.func.functional_call`` on detached copies of the state,
inside one synchronous helper: grad mode is thread-local and every node shares the
thread, so no grad-mode context is ever held across an ``await``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.func import functional_call

from peerflow.actors import SyncAlgorithmExecutor

from . import _steps
from ._consensus import _iterations
from ._pushsum import push_mix, push_share
from ._steps import Algorithm, Params, Tree, tree_map, weighted_sum

AlgorithmFactory = Callable[[dict[str, Any]], Algorithm]
StepCallback = Callable[[int, Any], None]
LossRecord = tuple[float, float]
_SEQUENCES = ("train_loss_sequence", "test_loss_sequence", "val_loss_sequence")


class FinalState(NamedTuple):
    """What ``load_result`` restores of a node's final state: its parameters."""

    x: Params


class LearningExecutor(SyncAlgorithmExecutor):
    """Trains ``model`` with a decentralized algorithm given as step functions.

    Subclasses choose the algorithm by overriding ``build_algorithm`` (as the
    NVFlare-named executors do), or pass ``algorithm``: a function of ``extra``.
    The algorithm's state must have an ``x`` (the parameters, by name); after a run
    ``state`` holds the final state and ``model`` the final parameters. The run's
    result (``to_result``) carries the loss sequences and the final parameters;
    ``load_result`` restores them into another executor of the same node (the
    controller's, in a multi-process run). ``test_accuracy`` is what an agent
    reported (agent-backed nodes, see ``AgentLearning``), else None.

    Args:
        model: the network to train; its trainable parameters are exchanged by name.
        loss: the loss function, ``loss(model(inputs), targets)``.
        train_dataloader: batches of (inputs, targets); one batch per iteration.
        test_dataloader: evaluated at every epoch's end, if given.
        val_dataloader: evaluated at every epoch's end, if given.
        sync_timeout: seconds to wait for all neighbours' values of one iteration.
        algorithm: builds the algorithm from ``extra`` (else ``build_algorithm``).
        on_step: called after every iteration with (iteration, state).
    """

    extra_parameters: tuple[str, ...] = ()
    """The ``extra`` entries the algorithm reads besides iterations and stepsize."""

    def __init__(self, model: nn.Module, loss: nn.Module, train_dataloader: Iterable[Any],
                 test_dataloader: Iterable[Any] | None = None,
                 val_dataloader: Iterable[Any] | None = None, sync_timeout: float = 10.0, *,
                 algorithm: AlgorithmFactory | None = None, on_step: StepCallback | None = None,
                 max_ahead: int = 1000) -> None:
        super().__init__(sync_timeout=sync_timeout, max_ahead=max_ahead)
        self.model, self.loss = model, loss
        self.train_dataloader = train_dataloader
        self.test_dataloader = test_dataloader
        self.val_dataloader = val_dataloader
        self.on_step = on_step
        self._factory = algorithm
        self.state: Any = None
        self.train_loss_sequence: list[LossRecord] = []
        self.test_loss_sequence: list[LossRecord] = []
        self.val_loss_sequence: list[LossRecord] = []
        self.test_accuracy: float | None = None

    def build_algorithm(self, extra: dict[str, Any]) -> Algorithm:
        """The algorithm to run, built from the run's ``extra``.

        Raises:
            NotImplementedError: no ``algorithm`` was given and this class has none.
        """
        if self._factory is None:
            raise NotImplementedError(f"{type(self).__name__} has no algorithm: pass "
                                      "algorithm= or override build_algorithm")
        return self._factory(extra)

    def trainable(self) -> Params:
        """Snapshot of the model's trainable parameters, by name."""
        return {name: p.detach().clone() for name, p in self.model.named_parameters()
                if p.requires_grad}

    async def _pre_algorithm_run(self, extra: dict[str, Any]) -> None:
        for name in _SEQUENCES:
            getattr(self, name).clear()
        self._record(0.0, None)

    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        algorithm, iterations = self.build_algorithm(extra), _iterations(extra)
        self._check_weights(algorithm)
        self.state = algorithm.init(self.trainable())
        batches, start = _epoch_batches(self.train_dataloader), time.perf_counter()
        for t in range(iterations):
            batch, epoch_end = next(batches)
            outgoing = self._outgoing(algorithm, algorithm.send(self.state))
            mixed = self._mix(algorithm, outgoing, await self.exchange(outgoing, t))
            self.state = await self.local_update(algorithm, mixed, batch)
            if self.on_step is not None:
                self.on_step(t, self.state)
            if epoch_end or t == iterations - 1:
                self._record(time.perf_counter() - start, self.state.x)
        return {**self.to_result(), "iterations": iterations}

    def to_result(self) -> dict[str, Any]:
        """What a report reads of this node: its loss sequences and final parameters."""
        return {**{name: getattr(self, name) for name in _SEQUENCES}, "params": self.state.x}

    def load_result(self, result: Mapping[str, Any]) -> None:
        """Restore what ``to_result`` gave (on another executor of the same node): loss
        sequences, ``state.x`` (also loaded into the model) and an agent's test accuracy.

        Raises:
            KeyError: the result lacks a field.
        """
        for name in _SEQUENCES:
            setattr(self, name, [(float(t), float(loss)) for t, loss in result[name]])
        self.state = FinalState(dict(result["params"]))
        self.test_accuracy = result.get("test_accuracy")
        self._load(self.state.x)

    async def local_update(self, algorithm: Algorithm, mixed: Tree, batch: Any) -> Any:
        """The local step: ``algorithm.update`` with the gradient on ``batch``.

        The hook for nodes whose local computation is done elsewhere (by an agent).
        """
        inputs, targets = batch
        return algorithm.update(self.state, mixed, partial(self._grad, inputs, targets))

    def _outgoing(self, algorithm: Algorithm, payload: Tree) -> Tree:
        if algorithm.push:
            return push_share(payload, len(self.out_neighbors))
        return tree_map(_snapshot, payload)

    def _mix(self, algorithm: Algorithm, own: Tree, received: dict[str, Tree]) -> Tree:
        """Mix what this node sent (its own share when pushing) with what it received."""
        if algorithm.push:
            return push_mix(own, received, [n.id for n in self.neighbors])
        return weighted_sum(own, self.weight,
                            [(received[n.id], n.weight) for n in self.neighbors])

    def _check_weights(self, algorithm: Algorithm) -> None:
        missing = [n.id for n in self.neighbors if n.weight is None]
        if missing and not algorithm.push:
            raise ValueError(f"node {self.id!r}: neighbours {missing} have no weight")

    def _grad(self, inputs: torch.Tensor, targets: torch.Tensor, x: Params) -> Params:
        leaves = {name: value.detach().requires_grad_() for name, value in x.items()}
        with torch.enable_grad():
            value = self.loss(functional_call(self.model, leaves, (inputs,)), targets)
            grads = torch.autograd.grad(value, list(leaves.values()))
        return dict(zip(leaves, grads, strict=True))

    def _record(self, elapsed: float, x: Params | None) -> None:
        """Load ``x`` into the model and record its losses."""
        if x is not None:
            self._load(x)
        for data, record in ((self.train_dataloader, self.train_loss_sequence),
                             (self.test_dataloader, self.test_loss_sequence),
                             (self.val_dataloader, self.val_loss_sequence)):
            if data is not None:
                record.append((elapsed, dataset_loss(self.model, self.loss, data)))

    def _load(self, x: Params) -> None:
        with torch.no_grad():
            for name, p in self.model.named_parameters():
                if name in x:
                    p.copy_(x[name])


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


def _snapshot(value: Any) -> Any:
    return value.clone() if isinstance(value, torch.Tensor) else value


def _epoch_batches(data: Iterable[Any]) -> Iterator[tuple[Any, bool]]:
    """Yield (batch, is the last of its epoch) forever, starting a new epoch when one ends."""
    end = object()
    while True:
        batches = iter(data)
        batch = next(batches, end)
        if batch is end:
            raise ValueError("the train dataloader yields no batch")
        while batch is not end:
            following = next(batches, end)
            yield batch, following is end
            batch = following


def _extra_float(extra: dict[str, Any], key: str, default: float | None = None) -> float:
    value = extra.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"extra[{key!r}] must be a number >= 0, got {value!r}")
    return float(value)


class DGDExecutor(LearningExecutor):
    """Distributed gradient descent (NVFlare's name); ``extra``: iterations, stepsize."""

    def build_algorithm(self, extra: dict[str, Any]) -> Algorithm:
        return _steps.dgd(_extra_float(extra, "stepsize"))


class GTExecutor(LearningExecutor):
    """Gradient tracking (NVFlare's name); ``extra``: iterations, stepsize."""

    def build_algorithm(self, extra: dict[str, Any]) -> Algorithm:
        return _steps.gt(_extra_float(extra, "stepsize"))


class GTAdamExecutor(LearningExecutor):
    """GTAdam; ``extra``: iterations, stepsize, beta1 (0.9), beta2 (0.999), epsilon (1e-8)."""

    extra_parameters = ("beta1", "beta2", "epsilon")

    def build_algorithm(self, extra: dict[str, Any]) -> Algorithm:
        return _steps.gtadam(_extra_float(extra, "stepsize"), _extra_float(extra, "beta1", 0.9),
                      _extra_float(extra, "beta2", 0.999), _extra_float(extra, "epsilon", 1e-8))


GTADAMExecutor = GTAdamExecutor
"""NVFlare's spelling."""


class ExtraExecutor(LearningExecutor):
    """EXTRA, exact with a constant step on undirected graphs; ``extra``: iterations, stepsize."""

    def build_algorithm(self, extra: dict[str, Any]) -> Algorithm:
        return _steps.extra(_extra_float(extra, "stepsize"))


class SubgradientPushExecutor(LearningExecutor):
    """Subgradient-push for directed graphs; ``extra``: iterations, stepsize, power (0)."""

    extra_parameters = ("power",)

    def build_algorithm(self, extra: dict[str, Any]) -> Algorithm:
        return _steps.subgradient_push(_extra_float(extra, "stepsize"),
                                       _extra_float(extra, "power", 0))


class PushDIGingExecutor(LearningExecutor):
    """Push-DIGing, exact on directed graphs; ``extra``: iterations, stepsize."""

    def build_algorithm(self, extra: dict[str, Any]) -> Algorithm:
        return _steps.push_diging(_extra_float(extra, "stepsize"))


LEARNING_EXECUTORS: dict[str, type[LearningExecutor]] = {
    "dgd": DGDExecutor, "gt": GTExecutor, "gtadam": GTAdamExecutor, "extra": ExtraExecutor,
    "subgradient-push": SubgradientPushExecutor, "push-diging": PushDIGingExecutor,
}
"""The learning executors by their command-line name."""
