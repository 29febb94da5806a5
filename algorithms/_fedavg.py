"""Federated averaging: NVFlare's ScatterAndGather workflow on the actor runtime.

Each round the controller broadcasts the global weights to every site as task
"train" (data: the weights, a map name -> array; meta: ``current_round`` and
``total_round``), waits for ``min_clients`` results, then up to
``wait_time_after_min_received`` seconds for the others, and replaces the global
weights with the weighted average of the results it has. A site's weight is
``meta["NUM_STEPS_CURRENT_ROUND"]`` (1 when the trainer reports none, as NVFlare's
aggregator does) times its ``aggregation_weights`` entry (default 1). A result
that comes after its round closed is dropped. A trainer's non-OK return code
aborts the job at its site (``_fedavg_sites``); a result whose names or shapes
differ from the global model's aborts it here, naming the site.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from peerflow.actors import Config, DistOptController, Network, Node, PanicReport
from peerflow.agents import MetaKey

TRAIN_TASK = "train"

Weights = dict[str, np.ndarray]


class ResultError(ValueError):
    """A site's train result does not fit the global model."""


@dataclass(slots=True)
class RoundRecord:
    """One round: who contributed with what weight, who was late, how long it took.

    Attributes:
        weights: each contributing site's aggregation weight.
        meta: each contributing site's result meta (numbers and strings only).
        late: the sites whose result had not come when the round closed.
        metrics: the new global model's metrics, if ``on_round_done`` sets them.
    """

    round: int
    weights: dict[str, float] = field(default_factory=dict)
    meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    late: list[str] = field(default_factory=list)
    seconds: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"round": self.round, "weights": self.weights, "meta": self.meta,
                "late": self.late, "seconds": self.seconds, "metrics": self.metrics}


def sites_config(sites: Iterable[str], extra: Mapping[str, Any] | None = None) -> Config:
    """A job's config for ``sites``: nodes without neighbours (run it with
    ``allow_disconnected=True``: sites talk to the controller only)."""
    return Config(Network(tuple(Node(site) for site in sites)), dict(extra or {}))


def as_weights(data: Any, where: str) -> Weights:
    """``data`` as a map name -> numpy array (torch CPU tensors and lists converted).

    Raises:
        ResultError: ``data`` is not a non-empty map of names to numeric arrays.
    """
    if not isinstance(data, Mapping) or not data:
        raise ResultError(f"{where}: expected a map of names to arrays, got "
                          f"{type(data).__name__}")
    weights: Weights = {}
    for name, value in data.items():
        try:
            array = np.asarray(value)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ResultError(f"{where}: {name!r} is not an array: {exc}") from None
        if not isinstance(name, str) or array.dtype.kind not in "fiu":
            raise ResultError(f"{where}: {name!r} must be a named numeric array, got "
                              f"{array.dtype}")
        weights[name] = array
    return weights


def check_result(site: str, data: Any, meta: Any, model: Weights) -> tuple[Weights, float]:
    """The site's weights, checked against ``model``, and its step count (1 if absent).

    Raises:
        ResultError: names, shapes or the step count are wrong; the message names the site.
    """
    where = f"site {site!r} result"
    weights = as_weights(data, where)
    if weights.keys() != model.keys():
        raise ResultError(f"{where}: expected arrays named {sorted(model)}, got {sorted(weights)}")
    for name, array in weights.items():
        if array.shape != model[name].shape:
            raise ResultError(f"{where}: {name!r} has shape {list(array.shape)}, the global "
                              f"model's is {list(model[name].shape)}")
        if not np.all(np.isfinite(array)):
            raise ResultError(f"{where}: {name!r} has non-finite values")
    if meta is not None and not isinstance(meta, Mapping):
        raise ResultError(f"{where}: meta must be a map, got {type(meta).__name__}")
    key = MetaKey.NUM_STEPS_CURRENT_ROUND
    steps = (meta or {}).get(key, 1)
    if isinstance(steps, bool) or not isinstance(steps, int | float) \
            or not (steps > 0 and math.isfinite(steps)):
        raise ResultError(f"{where}: meta {key} must be a number > 0, got {steps!r}")
    return weights, float(steps)


def aggregate(results: Mapping[str, Weights], weights: Mapping[str, float],
              model: Weights) -> Weights:
    """The weighted average of ``results``, in float64, cast to ``model``'s dtypes.

    ``sum_i w_i x_i / sum_i w_i``, summed in the order of ``results``.
    """
    total = sum(weights[site] for site in results)
    averaged: Weights = {}
    for name, like in model.items():
        acc = np.zeros(like.shape, dtype=np.float64)
        for site, values in results.items():
            acc += weights[site] * values[name].astype(np.float64)
        averaged[name] = (acc / total).astype(like.dtype)
    return averaged


class ScatterAndGather(DistOptController):
    """The federated averaging controller (NVFlare's ``ScatterAndGather``, its arguments).

    Args:
        config: the sites (a network of nodes without neighbours) and ``extra`` to report.
        initial_weights: the global model to start from, name -> array.
        min_clients: results needed before a round may close.
        num_rounds: rounds to run.
        wait_time_after_min_received: seconds to wait for the other sites once
            ``min_clients`` results came.
        train_task_name: the task's name.
        train_timeout: seconds a site may take per round (0: no bound; an agent's own
            heartbeats still bound it).
        aggregation_weights: a factor per site (default 1).
        on_round_done: called after each round with its record and the new global weights.

    Raises:
        ValueError: an argument is out of range.
    """

    def __init__(self, config: Config, initial_weights: Mapping[str, Any], *,
                 min_clients: int = 1, num_rounds: int = 5,
                 wait_time_after_min_received: float = 10.0, train_task_name: str = TRAIN_TASK,
                 train_timeout: float = 0.0, aggregation_weights: Mapping[str, float] | None = None,
                 on_round_done: Callable[[RoundRecord, Weights], None] | None = None,
                 config_timeout: float = 10.0) -> None:
        super().__init__(config, config_timeout=config_timeout)
        if not 1 <= min_clients <= len(self.targets):
            raise ValueError(f"min_clients must be in 1..{len(self.targets)} (the sites), "
                             f"got {min_clients}")
        if num_rounds < 0 or wait_time_after_min_received < 0 or train_timeout < 0:
            raise ValueError("num_rounds, wait_time_after_min_received and train_timeout "
                             "must be >= 0")
        self.global_weights = as_weights(initial_weights, "initial weights")
        self.min_clients, self.num_rounds = min_clients, num_rounds
        self.wait_time_after_min_received = wait_time_after_min_received
        self.train_task_name, self.train_timeout = train_task_name, train_timeout
        self.aggregation_weights = dict(aggregation_weights or {})
        self.on_round_done = on_round_done
        self.rounds: list[RoundRecord] = []

    async def control_flow(self) -> dict[str, Any]:
        """Run every round; each site's rounds contributed and rounds late.

        Raises:
            TaskFailed: fewer than ``min_clients`` sites answered a round.
        """
        for current in range(self.num_rounds):
            if not await self._round(current):
                break
        return {site: {"contributed": [r.round for r in self.rounds if site in r.weights],
                       "late": [r.round for r in self.rounds if site in r.late]}
                for site in self.targets}

    async def _round(self, current: int) -> bool:
        """Run one round; False if it aborted the job."""
        started = time.perf_counter()
        meta = {MetaKey.CURRENT_ROUND: current, MetaKey.TOTAL_ROUND: self.num_rounds}
        task = {"data": self.global_weights, "meta": meta}
        answers = await self.broadcast_and_wait(
            self.train_task_name, task, timeout=self.train_timeout or None,
            min_responses=self.min_clients,
            wait_time_after_min_received=self.wait_time_after_min_received)
        record = RoundRecord(current, late=[s for s in self.targets if s not in answers])
        results: dict[str, Weights] = {}
        for site in (s for s in self.targets if s in answers):
            answer = answers[site] if isinstance(answers[site], Mapping) else {}
            try:
                results[site], steps = check_result(site, answer.get("data"),
                                                    answer.get("meta"), self.global_weights)
            except ResultError as exc:
                self.abort(PanicReport(f"{exc} (round {current})", site, current))
                return False
            record.weights[site] = steps * self.aggregation_weights.get(site, 1.0)
            record.meta[site] = _plain_meta(answer.get("meta"))
        self.global_weights = aggregate(results, record.weights, self.global_weights)
        record.seconds = time.perf_counter() - started
        self.rounds.append(record)
        if self.on_round_done is not None:
            self.on_round_done(record, self.global_weights)
        return True


def _plain_meta(meta: Any) -> dict[str, Any]:
    """The numbers and strings of a result's meta, for the record."""
    if not isinstance(meta, Mapping):
        return {}
    return {str(k): v for k, v in meta.items()
            if isinstance(v, int | float | str) and not isinstance(v, bool)}

