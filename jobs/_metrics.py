"""Per-iteration metrics of a run, read from its executors' histories once it ends.

A run's metrics are ``Series``: one metric of one node (or of the whole network,
``NETWORK``) over iterations. They come from what the executors keep anyway, so
recording them costs the hot loop nothing:

- averaging nodes (consensus, push-sum; ``value_history``): ``value`` (scalars only)
  and ``distance_to_average`` (to the average of the initial values, the largest
  entry for vectors) at every iteration, 0 the initial value; the network's
  ``consensus_error`` (the largest distance of a node to the nodes' mean at that
  iteration) and ``distance_to_average`` (the largest over the nodes);
- learning nodes: ``train_loss``, ``test_loss``, ``val_loss`` where they are computed
  (the start, every epoch's end, the last iteration), with the seconds since the
  node's run started, and the final ``test_accuracy`` of classifiers; the network's
  mean of each;
- agents: whatever the trainer logged with ``log_metric(key, value, step)``, under its
  site, named ``key`` (NVFlare's streamed analytics keep the tag as logged); a metric
  logged without a step takes the number of that key's earlier records;
- fedavg: the global model's metrics after each round (``NETWORK``) and every site's
  aggregation weight and numeric result meta, at the round (NVFlare's
  ``current_round``, from 0), with the rounds' durations so far as seconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from itertools import accumulate
from typing import Any, NamedTuple

import numpy as np

from ._learning import node_accuracy

NETWORK = "_network"
"""The pseudo-node of network-wide series (its TensorBoard run, its ``node`` field)."""

_LOSSES = ("train", "test", "val")
"""The loss sequences of a learning node: ``train_loss_sequence``..."""


class Series(NamedTuple):
    """One metric of one node over iterations.

    Attributes:
        node: the node's id, or ``NETWORK``.
        name: the metric's name (a TensorBoard tag).
        steps: the iteration of each value.
        values: the values (floats; an agent's may be any msgpack value).
        seconds: seconds since the node's run started, per value; None if not kept.
    """

    node: str
    name: str
    steps: Sequence[int]
    values: Sequence[Any]
    seconds: Sequence[float] | None = None


def run_series(executors: Mapping[str, Any], iterations: int | None = None,
               controller: Any = None, *, classification: bool = False,
               logged: Mapping[str, Sequence[Any]] | None = None) -> Iterator[Series]:
    """Every series a run's executors (and a workflow's ``controller``) hold.

    Args:
        executors: the nodes' executors, after the run (or restored from its results).
        iterations: what the run was asked for (it places a learning run's last losses).
        controller: a workflow's controller (its ``rounds``).
        classification: a learning run's nodes get their final test accuracy.
        logged: each node's agent's ``log_metric`` records (default: ``agent_logs``).
    """
    if controller is not None and hasattr(controller, "rounds"):
        yield from _round_series(controller.rounds)
    nodes = list(executors.items())
    if nodes and all(hasattr(ex, "value_history") for _, ex in nodes):
        yield from _averaging_series({node: ex.value_history for node, ex in nodes})
    elif nodes and all(hasattr(ex, "train_loss_sequence") for _, ex in nodes):
        yield from _learning_series(nodes, iterations, classification)
    for node, records in (agent_logs(executors) if logged is None else logged).items():
        yield from agent_series(node, records)


def agent_logs(executors: Mapping[str, Any]) -> dict[str, Sequence[Any]]:
    """What each agent-backed node's agent logged (``AgentServer.metrics``)."""
    return {node: ex.agent.metrics for node, ex in executors.items()
            if hasattr(getattr(ex, "agent", None), "metrics")}


def agent_series(node: str, logged: Sequence[Any]) -> Iterator[Series]:
    """A node's agent's ``log_metric`` records, one series per key, in logged order."""
    by_key: dict[str, tuple[list[int], list[Any]]] = {}
    for record in logged:
        if not isinstance(record, Mapping) or not isinstance(record.get("key"), str):
            continue
        steps, values = by_key.setdefault(record["key"], ([], []))
        step = record.get("step")
        steps.append(step if isinstance(step, int) and not isinstance(step, bool)
                     else len(steps))
        values.append(record.get("value"))
    for key, (steps, values) in by_key.items():
        yield Series(node, key, steps, values)


def _averaging_series(histories: Mapping[str, Sequence[Any]]) -> Iterator[Series]:
    """Values and distances to the initial average; the network's consensus error.

    The iterations every node reached are one array (a row per node), converted once:
    per-node conversions cost seconds at 10,000 nodes.
    """
    if not histories:
        return
    reached = min(len(h) for h in histories.values())
    stacked = np.asarray([h if len(h) == reached else h[:reached]
                          for h in histories.values()], dtype=float)
    average = stacked[:, 0].mean(axis=0)
    distance = _largest_entry(np.abs(stacked - average), 2)
    steps = np.arange(reached)
    for row, (node, history) in enumerate(histories.items()):
        values, away, at = stacked[row], distance[row], steps
        if len(history) > reached:  # an aborted run: this node got further
            values = np.asarray(history, dtype=float)
            away, at = _largest_entry(np.abs(values - average), 1), np.arange(len(values))
        if values.ndim == 1:
            yield Series(node, "value", at, values)
        yield Series(node, "distance_to_average", at, away)
    error = _largest_entry(np.abs(stacked - stacked.mean(axis=0)).max(axis=0), 1)
    yield Series(NETWORK, "consensus_error", steps, error)
    yield Series(NETWORK, "distance_to_average", steps, distance.max(axis=0))


def _largest_entry(values: np.ndarray, kept: int) -> np.ndarray:
    """The largest entry of vector values: the axes after the first ``kept`` reduced."""
    return values.reshape(*values.shape[:kept], -1).max(axis=-1) if values.ndim > kept \
        else values


def _learning_series(nodes: list[tuple[str, Any]], iterations: int | None,
                     classification: bool) -> Iterator[Series]:
    """Losses where computed, the final test accuracy; the network's means."""
    means: dict[str, list[Series]] = {}
    for node, ex in nodes:
        steps = loss_steps(ex, len(loss_records(ex.train_loss_sequence)), iterations)
        for kind in _LOSSES:
            records = loss_records(getattr(ex, f"{kind}_loss_sequence", ()))
            if records:
                labelled, seconds, losses = zip(*records, strict=True)
                at = [step if t is None else t for t, step in zip(labelled, steps, strict=False)]
                series = Series(node, f"{kind}_loss", at, losses, seconds)
                means.setdefault(series.name, []).append(series)
                yield series
        if classification and steps and (ex.test_accuracy is not None
                                         or ex.test_dataloader is not None):
            yield Series(node, "test_accuracy", steps[-1:], [node_accuracy(ex)])
    for name, per_node in means.items():
        reached = min(len(s.values) for s in per_node)
        yield Series(NETWORK, name, per_node[0].steps[:reached],
                     np.mean([s.values[:reached] for s in per_node], axis=0))


def loss_steps(executor: Any, recorded: int, iterations: int | None) -> list[int]:
    """The iteration of each of a learning node's ``recorded`` loss records: 0, then
    every epoch's end, then ``iterations`` (the last) if that is not an epoch's end.

    The executor's loop records where an epoch ends, so the iterations follow from the
    batches per epoch; the number of records says how far the node got.
    """
    batches = max(1, len(executor.train_dataloader))
    steps = [batches * k for k in range(recorded)]
    if iterations is not None and steps and steps[-1] > iterations:
        steps[-1] = iterations
    return steps


def loss_records(sequence: Any) -> list[tuple[int | None, float | None, float]]:
    """(iteration or None, seconds, loss) of each record of a loss sequence: an
    executor's ``LossRecord``s (``.iteration``, ``.seconds``, ``.loss``), their column
    form ``{"iteration": [...], "seconds": [...], "loss": [...]}``, labelled records
    ``{"iteration", "seconds", "loss"}`` or unlabelled [seconds, loss] pairs."""
    if isinstance(sequence, Mapping):
        count = len(sequence["loss"])
        return list(zip(sequence.get("iteration") or [None] * count,
                        sequence.get("seconds") or [None] * count, sequence["loss"],
                        strict=True))
    return [(r.get("iteration"), r.get("seconds"), r["loss"]) if isinstance(r, Mapping)
            else (r.iteration, r.seconds, r.loss) if hasattr(r, "loss")
            else (None, r[0], r[1]) for r in sequence]


def _round_series(rounds: Sequence[Any]) -> Iterator[Series]:
    """A workflow's global model's metrics after each round, and its sites' aggregation
    weights and numeric result meta per round (steps: the round, from 0; seconds: the
    rounds' durations so far)."""
    ended = dict(zip((r.round for r in rounds), accumulate(r.seconds for r in rounds),
                     strict=True))
    points: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for r in rounds:
        for name, value in r.metrics.items():
            points.setdefault((NETWORK, name), []).append((r.round, value))
        for site, weight in r.weights.items():
            points.setdefault((site, "aggregation_weight"), []).append((r.round, weight))
        for site, meta in r.meta.items():
            for key, value in meta.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    points.setdefault((site, key), []).append((r.round, value))
    for (node, name), series in points.items():
        steps, values = zip(*series, strict=True)
        yield Series(node, name, steps, values, [ended[t] for t in steps])
