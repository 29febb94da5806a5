"""The batched engine: a whole synchronous run as one program, every node's state stacked.

``simulate_batched`` runs what ``peerflow.simulate`` would, for in-process runs
where every node runs the same built-in executor (consensus, push-sum, or a learning
one with the same model and loss): the same step functions over the stack
(``_batched``), mixing as a sparse product with W(t), losses recorded in bulk. It
leaves the executors as an actor run does, and returns a ``RunResult`` of engine
"batched". ``batched_obstacle`` says why a run cannot go batched (None: it can), for the
caller to say so and run the actor engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from peerflow.actors import Config, ConfigError, RunResult, prepare_config

from ._batched import MatrixAt, Mixer
from ._batched_learning import BatchedLearning
from ._consensus import ConsensusExecutor, _iterations
from ._executors import LEARNING_EXECUTORS
from ._learning import LearningExecutor
from ._pushsum import PushSumExecutor
from ._schedules import MixingSchedule

Progress = Callable[[Mapping[str, int | None]], None]
_AVERAGING = (ConsensusExecutor, PushSumExecutor)
_SUPPORTED = (*_AVERAGING, LearningExecutor, *LEARNING_EXECUTORS.values())
_ACTOR_OPTIONS = ("run_timeout", "controller")
PROGRESS_INTERVAL = 0.1
"""Seconds between two progress reports."""


def batched_obstacle(config: Config, executors: Mapping[str, Any] | Sequence[Any],
             transport: Any = "memory", **options: Any) -> str | None:
    """Why this run cannot run batched, in one phrase; None if it can."""
    nodes = list(executors.values()) if isinstance(executors, Mapping) else list(executors)
    kinds = sorted({type(ex).__name__ for ex in nodes})
    if len(kinds) > 1:
        return f"the nodes run different executors ({', '.join(kinds)})"
    if not nodes or type(nodes[0]) not in _SUPPORTED:
        return (f"{kinds[0] if kinds else 'no executor'} is not a built-in executor (its "
                "own run_algorithm runs only as an actor)")
    if transport != "memory":
        return f"the batched engine runs in memory, not over {transport!r}"
    given = [name for name in _ACTOR_OPTIONS if options.get(name) is not None]
    if given:
        return f"{', '.join(given)} applies to actors"
    check = _learning_obstacle if isinstance(nodes[0], LearningExecutor) else _value_obstacle
    return check(nodes)


def _value_obstacle(nodes: list[Any]) -> str | None:
    values = [ex.initial_value for ex in nodes]
    kinds = {(type(v).__name__, getattr(v, "shape", ()), str(getattr(v, "dtype", "")))
             for v in values}
    if len(kinds) > 1 or isinstance(values[0], bool):
        return "the nodes' initial values differ in type or shape"
    if not isinstance(values[0], int | float | np.ndarray | torch.Tensor):
        return f"an initial value of type {type(values[0]).__name__} does not stack"
    return None


def _learning_obstacle(nodes: list[LearningExecutor]) -> str | None:
    first = nodes[0]
    checks = [
        (len({id(ex._factory) for ex in nodes}) > 1, "the nodes build different algorithms"),
        (len({_signature(ex.model) for ex in nodes}) > 1, "the nodes' models differ"),
        (any(True for _ in first.model.buffers()), "the model has buffers, kept per node"),
        (len({repr(ex.loss) for ex in nodes}) > 1, "the nodes' losses differ"),
        (len({ex.record_every for ex in nodes}) > 1, "the nodes record at different times"),
        (len({tuple(data is None for data, _ in ex.evaluated()) for ex in nodes}) > 1,
         "some nodes evaluate on data others lack"),
        (len({_batching(ex.train_dataloader) for ex in nodes}) > 1,
         "the nodes' training batches differ in size"),
    ]
    return next((reason for failed, reason in checks if failed), None)


def _signature(model: torch.nn.Module) -> tuple[Any, ...]:
    params = tuple((name, tuple(p.shape), p.dtype, p.requires_grad)
                   for name, p in model.named_parameters())
    return type(model), repr(model), params


def _batching(data: Any) -> tuple[Any, ...]:
    """What must agree between nodes for their batches to stack."""
    dataset, sampler = getattr(data, "dataset", None), getattr(data, "sampler", None)
    if dataset is None:
        return ("id", id(data))  # unknown loaders: each its own, never stacked blindly
    return (len(dataset), len(data), getattr(sampler, "batch_size", None),
            getattr(data, "batch_size", None))


def simulate_batched(config: Config, executors: Mapping[str, Any] | Sequence[Any], *,
                     allow_disconnected: bool = False, schedule: MatrixAt | None = None,
                     on_progress: Progress | None = None) -> RunResult:
    """Run the job batched (``batched_obstacle`` must be None); the executors end as after a run.

    Args:
        config: the network and the algorithm's ``extra``.
        executors: ``{node_id: executor}``, or a sequence in the network's node order.
        allow_disconnected: run a network that is not (strongly) connected.
        schedule: W(t) (A(t) for push algorithms) per iteration, in the network's node
            order (None: the network's own, the same at every iteration).
        on_progress: called about every 0.1 s with each node's iteration.

    Raises:
        ConfigError: the network is invalid or disconnected (unless allowed), or the
            executors do not match its nodes.
    """
    config = prepare_config(config, allow_disconnected=allow_disconnected)
    ids = config.network.node_ids
    nodes = _in_order(ids, executors)
    progress = _progress(ids, on_progress)
    started = time.perf_counter()
    try:
        results = _run(nodes, config, schedule, progress)
    except (ValueError, TypeError, RuntimeError) as exc:
        return RunResult("aborted", f"batched run failed: {exc}", timings=_timings(started),
                         engine="batched")
    progress(None)
    return RunResult("completed", results=dict(zip(ids, results, strict=True)),
                     timings=_timings(started), engine="batched")


def _run(nodes: list[Any], config: Config, schedule: MatrixAt | None,
         progress: Callable[[int | None], None]) -> list[dict[str, Any]]:
    """Every node's result; ``schedule`` None: the network's W (A for push algorithms)."""
    extra, learning = dict(config.extra), isinstance(nodes[0], LearningExecutor)
    algorithm = nodes[0].build_algorithm(extra) if learning else None
    push = isinstance(nodes[0], PushSumExecutor) or (algorithm is not None and algorithm.push)
    mixer = Mixer(schedule or MixingSchedule(config.network, push).matrix)
    if algorithm is not None:
        batched = BatchedLearning(nodes)
        batched.run(algorithm, extra, mixer, progress)
        return batched.results(_iterations(extra))
    _average(nodes, _iterations(extra), mixer, progress)
    return [ex.to_result() for ex in nodes]


def _average(nodes: list[Any], iterations: int, mixer: Mixer,
             progress: Callable[[int | None], None]) -> None:
    """Consensus (x <- W x) or push-sum ({x, w} <- A {x, w}, estimate x / w), in bulk."""
    push = isinstance(nodes[0], PushSumExecutor)
    x = _values([ex.initial_value for ex in nodes])
    w = torch.ones(len(nodes), dtype=torch.float64)
    history = []
    for t in range(iterations):
        x = mixer(t, x)
        if push:
            w = mixer(t, w)
        history.append(x / w.reshape(-1, *[1] * (x.dim() - 1)) if push else x)
        progress(t)
    values = _as_initial(nodes[0].initial_value, history, len(nodes))
    for k, ex in enumerate(nodes):
        ex.value_history = [ex.initial_value, *values[k]]
        ex.current_value = ex.value_history[-1]
        ex.iteration = iterations - 1 if iterations else None
        if push:
            ex.push_weight = float(w[k])


def _values(values: list[Any]) -> torch.Tensor:
    """The nodes' initial values stacked, as floats (numbers and arrays in float64)."""
    if isinstance(values[0], torch.Tensor):
        x = torch.stack(values)
        return x if x.is_floating_point() else x.double()
    return torch.as_tensor(np.asarray(values, dtype=float))


def _as_initial(like: Any, history: list[torch.Tensor], count: int) -> list[list[Any]]:
    """Per node, its values over the iterations, of the kind of its initial value."""
    if not history:
        return [[] for _ in range(count)]
    values = torch.stack(history, dim=1)  # (nodes, iterations, ...)
    if isinstance(like, torch.Tensor):
        dtype = like.dtype if like.is_floating_point() else values.dtype
        return [list(node.to(dtype).unbind()) for node in values]
    if isinstance(like, np.ndarray):
        dtype = like.dtype if like.dtype.kind == "f" else np.float64
        return [list(node.numpy().astype(dtype, copy=False)) for node in values]
    return values.tolist()


def _in_order(ids: list[str], executors: Mapping[str, Any] | Sequence[Any]) -> list[Any]:
    if not isinstance(executors, Mapping):
        executors = dict(zip(ids, executors, strict=False)) if len(executors) == len(ids) \
            else {}
    by_node = {str(k): v for k, v in executors.items()}
    if set(by_node) != set(ids):
        raise ConfigError(f"executors do not match the network: no executor for "
                          f"{sorted(set(ids) - set(by_node))}, executors for unknown nodes "
                          f"{sorted(set(by_node) - set(ids))}")
    return [by_node[node] for node in ids]


def _progress(ids: list[str], on_progress: Progress | None) -> Callable[[int | None], None]:
    """Report iteration t to ``on_progress`` at most every ``PROGRESS_INTERVAL`` seconds
    (None: the last, always)."""
    last = [0.0, -1]

    def report(t: int | None) -> None:
        if t is not None:
            last[1] = t
        now = time.perf_counter()
        if on_progress is not None and (t is None or now - last[0] >= PROGRESS_INTERVAL):
            last[0] = now
            on_progress(dict.fromkeys(ids, last[1] if last[1] >= 0 else None))

    return report


def _timings(started: float) -> dict[str, float]:
    elapsed = time.perf_counter() - started
    return {"config": 0.0, "run": elapsed, "total": elapsed}
