"""Asynchronous jobs: pairwise gossip, robust push-sum, AD-PSGD and gradient-push.

Their ``extra`` is ``AsyncTunables`` (max_wait, scheduled, max_delay, drop); a job's
``iterations`` are each node's ticks, and a scheduled job's global ticks are
nodes x iterations. Reports plot the error or loss against ticks and against wall time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from peerflow import algorithms
from peerflow.actors import RunResult, TickSchedule, is_symmetric
from peerflow.algorithms import AsyncPushSumExecutor, AsyncTunables, GossipExecutor

from . import _learning as learning
from ._consensus import FLOOR, in_process_timeout
from ._errors import JobError
from ._output import write_summary
from ._plots import figure
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
    """Write summary.json and the error plots against ticks and wall time (if ``out``)."""
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
    if out is not None:
        write_summary(out, job.algorithm, result, job.config, metrics=metrics)
        if result.ok:
            errors = {node: np.maximum(np.abs(np.asarray(ex.value_history[1:-1], dtype=float)
                                              - x0.mean()), FLOOR)
                      for node, ex in executors.items()}
            clocks = {node: ex.clock for node, ex in executors.items()}
            plot_against_time(out, job.algorithm, errors, clocks, "|x_i - average|")
    return Table(job.algorithm, rows)


def plot_against_time(out: Path, algorithm: str, series: dict[str, Any],
                      seconds: dict[str, Any], ylabel: str) -> None:
    """``ALGORITHM_ticks.png`` and ``ALGORITHM_time.png``: each node's series (log y)
    against its ticks and against the seconds since the start."""
    for name, xs in (("ticks", {n: np.arange(len(s)) for n, s in series.items()}),
                     ("time", seconds)):
        with figure(out / f"{algorithm}_{name}.png", f"{algorithm}: {ylabel} per node",
                    "tick" if name == "ticks" else "seconds", ylabel, logy=True,
                    size=(9, 5), legend_beside=True) as axes:
            for node, values in list(series.items())[:10]:
                length = min(len(xs[node]), len(values))
                axes.plot(np.asarray(xs[node][:length]), np.asarray(values[:length]), lw=1,
                          label=node)


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
    """The learning report, plus the train loss against wall time."""
    task = learning.build_problem(str(job.problem), len(job.network.nodes), job.seed)
    table = learning.report_learning(job.algorithm, task, result, job.config, executors, out)
    if out is not None and result.ok:
        losses = {n: [loss for _, loss in ex.train_loss_sequence] for n, ex in executors.items()}
        seconds = {n: [t for t, _ in ex.train_loss_sequence] for n, ex in executors.items()}
        plot_against_time(out, f"{job.algorithm}_train_loss", losses, seconds, "train loss")
    return table
