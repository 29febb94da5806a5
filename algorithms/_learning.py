"""The learning executor: a torch model with its data, run through the one step loop
(each algorithm's executor, by name, is in ``_executors``).

Each iteration the loop (``_loop``) sends ``algorithm.send(state)`` (push shares for
push algorithms), mixes what came back, and steps with the gradient the node's
objective gives at the point ``algorithm.query`` names: here a ``BatchObjective``
over the train dataloader. Losses over the train, test and validation sets are
recorded at the start, at the end of every epoch (or every ``record_every``
iterations) and after the last iteration; the model is loaded with the parameters
recorded last, so it ends with the final ones. The train loss is read through
``train_eval_dataloader`` when given: a loader with a random stream of its own, so
that recording (on, off or how often) never changes which batches a node trains on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, NamedTuple

import msgspec
import torch
from torch import nn

from peerflow.actors import DEFAULT_SYNC_TIMEOUT

from ._consensus import _iterations
from ._loop import Algorithm, StepExecutor
from ._losses import LossRecord, loss_columns, loss_records
from ._objective import BatchObjective, dataset_loss, torch_gradient
from ._steps import Params
from ._tunables import Tunables

__all__ = ["LearningExecutor", "dataset_loss"]

AlgorithmFactory = Callable[[dict[str, Any]], Algorithm]
StepCallback = Callable[[int, Any], None]
_SEQUENCES = ("train_loss_sequence", "test_loss_sequence", "val_loss_sequence")


class FinalState(NamedTuple):
    """What ``load_result`` restores of a node's final state: its parameters."""

    x: Params


class LearningExecutor(StepExecutor):
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
        train_eval_dataloader: the training set as the train loss reads it (None: the
            train dataloader itself, as NVFlare's executors do, so each record draws a
            shuffle from the generator that picks training batches).
        record_every: record the losses every this many iterations (None: at every
            epoch's end; 0: only at the start and after the last iteration).
    """

    tunables: ClassVar[type[Tunables]] = Tunables
    """The ``extra`` keys the algorithm reads besides iterations and stepsize, with
    their types and defaults."""

    def __init__(self, model: nn.Module, loss: nn.Module, train_dataloader: Iterable[Any],
                 test_dataloader: Iterable[Any] | None = None,
                 val_dataloader: Iterable[Any] | None = None,
                 sync_timeout: float = DEFAULT_SYNC_TIMEOUT, *,
                 algorithm: AlgorithmFactory | None = None, on_step: StepCallback | None = None,
                 max_ahead: int = 1000, train_eval_dataloader: Iterable[Any] | None = None,
                 record_every: int | None = None) -> None:
        super().__init__(sync_timeout=sync_timeout, max_ahead=max_ahead)
        self.model, self.loss = model, loss
        self.train_dataloader = train_dataloader
        self.test_dataloader = test_dataloader
        self.val_dataloader = val_dataloader
        self.train_eval_dataloader = train_eval_dataloader
        if record_every is not None and (isinstance(record_every, bool) or record_every < 0):
            raise ValueError(f"record_every must be an integer >= 0 or None, got {record_every!r}")
        self.record_every = record_every
        self.on_step = on_step
        self._factory = algorithm
        self.state: Any = None
        self.train_loss_sequence: list[LossRecord] = []
        self.test_loss_sequence: list[LossRecord] = []
        self.val_loss_sequence: list[LossRecord] = []
        self.test_accuracy: float | None = None
        self.bytes_sequence: list[int] = []
        self._bytes_before = 0
        self._objective = BatchObjective((), self.batch_gradient)
        self._t, self._last, self._start = -1, -1, 0.0

    def build_algorithm(self, extra: dict[str, Any]) -> Algorithm:
        """The algorithm to run, built from the run's ``extra``.

        Raises:
            NotImplementedError: no ``algorithm`` was given and this class has none.
        """
        if self._factory is None:
            raise NotImplementedError(f"{type(self).__name__} has no algorithm: pass "
                                      "algorithm= or override build_algorithm")
        return self._factory(extra)

    def tuned(self, extra: Mapping[str, Any]) -> dict[str, Any]:
        """``tunables`` as ``extra`` sets them (defaults for the absent ones).

        Raises:
            ValueError: ``extra`` has a key the algorithm does not read (the message
                names those it reads), or a tunable of the wrong type or range.
        """
        known = ("iterations", "stepsize", *self.tunables.__struct_fields__)
        unknown = sorted(set(extra) - set(known))
        if unknown:
            raise ValueError(f"extra has unknown keys {unknown}; {type(self).__name__} reads "
                             f"{list(known)}")
        try:
            return msgspec.structs.asdict(self.tunables.from_extra(extra))
        except msgspec.ValidationError as exc:
            raise ValueError(f"extra: {exc}") from None

    def trainable(self) -> Params:
        """Snapshot of the model's trainable parameters, by name."""
        return {name: p.detach().clone() for name, p in self.model.named_parameters()
                if p.requires_grad}

    async def _pre_algorithm_run(self, extra: dict[str, Any]) -> None:
        for name in _SEQUENCES:
            getattr(self, name).clear()
        self.bytes_sequence[:] = [0]
        self._bytes_before = self.sent_bytes()
        self._record(0, 0.0, None)

    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        algorithm, iterations = self.build_algorithm(extra), _iterations(extra)
        self.state = algorithm.init(self.trainable())
        self._objective = BatchObjective(self.train_dataloader, self.batch_gradient)
        self._t, self._last, self._start = -1, iterations - 1, time.perf_counter()
        await self.run_steps(algorithm, self.state, self._objective, iterations, self._observe)
        return {**self.to_result(), "iterations": iterations}

    def _observe(self, state: Any) -> None:
        """Keep the new state; record the losses at an epoch's end and after the last step."""
        self.state, self._t = state, self._t + 1
        if self.on_step is not None:
            self.on_step(self._t, state)
        if record_due(self.record_every, self._t, self._objective.epoch_end) or \
                self._t == self._last:
            self.bytes_sequence.append(self.sent_bytes() - self._bytes_before)
            self._record(self._t + 1, time.perf_counter() - self._start, state.x)

    def to_result(self) -> dict[str, Any]:
        """What a report reads of this node: its loss sequences (``loss_columns``), the
        bytes it had sent at each loss record and in all, and its final parameters (None
        before the run set them up)."""
        return {**{name: loss_columns(getattr(self, name)) for name in _SEQUENCES},
                "bytes_sequence": self.bytes_sequence,
                "bytes_sent": self.bytes_sequence[-1] if self.bytes_sequence else 0,
                "params": None if self.state is None else self.state.x}

    def load_result(self, result: Mapping[str, Any]) -> None:
        """Restore what ``to_result`` gave (on another executor of the same node): loss
        sequences, ``state.x`` (also loaded into the model) and an agent's test accuracy.

        Raises:
            KeyError: the result lacks a field.
            ValueError: a loss sequence is malformed.
        """
        for name in _SEQUENCES:
            setattr(self, name, loss_records(result[name]))
        self.test_accuracy = result.get("test_accuracy")
        self.bytes_sequence = [int(n) for n in result.get("bytes_sequence", ())]
        if result["params"] is not None:  # None: a node that stopped before it started
            self.state = FinalState(dict(result["params"]))
            self._load(self.state.x)

    async def batch_gradient(self, x: Params, batch: Any) -> Params:
        """The local gradient at ``x`` on ``batch``: the model's, by torch.

        The hook for nodes whose local computation is done elsewhere (by an agent).
        """
        return torch_gradient(self.model, self.loss, x, batch)

    def evaluated(self) -> tuple[tuple[Iterable[Any] | None, list[LossRecord]], ...]:
        """(loader, loss sequence) of the train, test and validation losses."""
        train = self.train_dataloader if self.train_eval_dataloader is None else \
            self.train_eval_dataloader
        return ((train, self.train_loss_sequence), (self.test_dataloader, self.test_loss_sequence),
                (self.val_dataloader, self.val_loss_sequence))

    def _record(self, iteration: int, elapsed: float, x: Params | None) -> None:
        """Load ``x`` (the parameters after ``iteration`` iterations) into the model and
        record its losses."""
        if x is not None:
            self._load(x)
        for data, record in self.evaluated():
            if data is not None:
                record.append(LossRecord(iteration, elapsed,
                                         dataset_loss(self.model, self.loss, data)))

    def _load(self, x: Params) -> None:
        with torch.no_grad():
            for name, p in self.model.named_parameters():
                if name in x:
                    p.copy_(x[name])


def record_due(record_every: int | None, t: int, epoch_end: bool) -> bool:
    """Whether iteration ``t``'s losses are recorded (besides the start and the last)."""
    if record_every is None:
        return epoch_end
    return record_every > 0 and (t + 1) % record_every == 0
