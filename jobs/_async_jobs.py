"""Asynchronous jobs: pairwise gossip, robust push-sum, AD-PSGD and gradient-push.

Their ``extra`` is ``AsyncTunables`` (max_wait, scheduled, max_delay, drop); a job's
``iterations`` are each node's ticks, and a scheduled job's global ticks are
nodes x iterations. Reports plot the error or loss against ticks and against wall time,
from the summary (``peerflow show`` draws them again).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from peerflow import algorithms
from peerflow.actors import RunResult, TickSchedule, is_symmetric
from peerflow.algorithms import AsyncPushSumExecutor, AsyncTunables, GossipExecutor

from . import _learning as learning
from ._consensus import FLOOR, in_process_timeout
from ._errors import JobError
from ._learning_plots import plot_learning
from ._output import reached_results, write_summary
from ._plots import plot_loss_against
from ._table import Table

if TYPE_CHECKING:
    from ._job import Job

MAX_DELAY = 10_000
"""The longest delay a scheduled job may ask for, in ticks."""
AVERAGING = {"gossip": GossipExecutor, "async-push-sum": AsyncPushSumExecutor}
"""The asynchronous averaging algorithms by name."""


PAIRWISE = ("gossip", "ad-psgd")
"""The algorithms that average in pairs: they need an undirected graph."""


def async_options(job: Job) -> dict[str, Any]:
    """The executor options a job's ``extra`` gives: max_wait and the schedule, if any.

    Raises:
        JobError: a pairwise algorithm on a directed graph, or a drop or delay out of range.
    """
    if job.algorithm in PAIRWISE and not is_symmetric(job.network):
        raise JobError(f"{job.algorithm} averages in pairs: it needs an undirected graph "
                       "(use async-push-sum or async-gradient-push on a directed one)")
    tuned = AsyncTunables.from_extra(job.extra)
    if not tuned.scheduled:
        return {"max_wait": tuned.max_wait, "schedule": None}
    if tuned.drop >= 1 or tuned.max_delay > MAX_DELAY:
        raise JobError(f"{job.algorithm}: drop must be below 1 and max_delay at most "
                       f"{MAX_DELAY} ticks, got drop={tuned.drop}, max_delay={tuned.max_delay}")
    ids = job.network.node_ids
    return {"max_wait": tuned.max_wait, "schedule": TickSchedule(
        ids, job.iterations * len(ids), seed=job.seed, max_delay=int(tuned.max_delay),
        drop=tuned.drop)}


def averaging_executors(job: Job) -> dict[str, Any]:
    """One executor per node, initial values uniform in [0, 1) from the job's seed."""
    ids = job.network.node_ids
    x0 = np.random.default_rng(job.seed).uniform(size=len(ids))
    timeout = in_process_timeout(job.sync_timeout, len(ids))
    kind = AVERAGING[job.algorithm]
    return {node: kind(float(x), sync_timeout=timeout, **async_options(job))
            for node, x in zip(ids, x0, strict=True)}


def report_averaging(result: RunResult, job: Job, executors: dict[str, Any],
                     out: Path | None) -> Table:
    """Write summary.json (an unfinished run: what each node reached) and the error plots
    against ticks and wall time (if ``out``); the summary table."""
    x0 = np.array([ex.initial_value for ex in executors.values()], dtype=float)
    final = np.array([ex.current_value for ex in executors.values()], dtype=float)
    metrics: dict[str, Any] = {} if not result.ok else {
        "true_average": float(x0.mean()),
        "distance_to_average": float(np.max(np.abs(final - x0.mean()))),
        "final_spread": float(np.ptp(final)),
        "ticks_min": min(len(ex.clock) for ex in executors.values()),
        "ticks_max": max(len(ex.clock) for ex in executors.values())}
    if result.ok and job.algorithm == "gossip":
        metrics["sum_error"] = float(abs(final.sum() - x0.sum()))
    rows = [("status", result.status), ("nodes", str(len(executors))),
            ("iterations", str(job.iterations))]
    rows += [(k.replace("_", " "), f"{v:.4g}") for k, v in metrics.items()]
    rows.append(("wall time", f"{result.wall_time:.3f} s"))
    table = Table(job.algorithm, rows)
    if out is not None:
        plot_averaging(write_summary(out, job.algorithm, result, job.config, table,
                                     metrics=metrics, **reached_results(result, executors)),
                       out)
    return table


def plot_averaging(summary: Mapping[str, Any], out: Path) -> None:
    """Draw an asynchronous averaging run's error plots from its summary (none if the
    true average is not known: the run did not complete)."""
    average = summary["metrics"].get("true_average")
    if average is None:
        return
    results = summary["results"]
    errors = {node: np.maximum(np.abs(np.asarray(result["value_history"][1:-1], dtype=float)
                                      - average), FLOOR) for node, result in results.items()}
    plot_against_time(out, summary["algorithm"], errors,
                      {node: result["clock"] for node, result in results.items()},
                      "|x_i - average|")


def plot_against_time(out: Path, algorithm: str, series: dict[str, Any],
                      seconds: dict[str, Any], ylabel: str) -> None:
    """``ALGORITHM_ticks.png`` and ``ALGORITHM_time.png``: each node's series (log y)
    against its ticks and against the seconds since the start."""
    ticks = {node: np.arange(len(values)) for node, values in series.items()}
    for name, xs, xlabel in (("ticks", ticks, "tick"), ("time", seconds, "seconds")):
        plot_loss_against(out / f"{algorithm}_{name}.png", f"{algorithm}: {ylabel} per node",
                          series, xs, xlabel, ylabel)


def async_learning_executors(job: Job) -> dict[str, Any]:
    """One asynchronous learning executor per node of the job's problem."""
    task = learning.build_problem(str(job.problem), len(job.network.nodes), job.seed)
    import torch  # loaded by the problem already; set before any node computes

    torch.set_num_threads(job.torch_threads)
    executor = algorithms.ASYNC_LEARNING_EXECUTORS[job.algorithm]
    return {node: executor(**task.node_kwargs(i), sync_timeout=job.sync_timeout,
                           seed=job.seed, **async_options(job))
            for i, node in enumerate(job.network.node_ids)}


def report_async_learning(result: RunResult, job: Job, executors: dict[str, Any],
                          out: Path | None) -> Table:
    """The learning report, its plots with the train loss against wall time."""
    task = learning.build_problem(str(job.problem), len(job.network.nodes), job.seed)
    return learning.report_learning(job.algorithm, task, result, job.config, executors, out,
                                    plot=plot_async_learning)


def plot_async_learning(summary: Mapping[str, Any], out: Path) -> None:
    """Draw an asynchronous learning run's plots from its summary: the learning ones
    (``plot_learning``: against epochs, wall time, bytes) and each node's train loss
    against its ticks."""
    plot_learning(summary, out)  # with the train loss against wall time
    losses = {node: result["train_loss_sequence"]["loss"]
              for node, result in summary["results"].items()}
    plot_loss_against(out / f"{summary['algorithm']}_train_loss_ticks.png",
                      f"{summary['algorithm']}: train loss per node", losses,
                      {node: np.arange(len(values)) for node, values in losses.items()},
                      "tick", "train loss")
