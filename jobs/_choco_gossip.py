"""CHOCO-gossip jobs: average random vectors with compressed messages; their metrics,
bytes per node and plots (distance to the average against iterations and bytes)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from peerflow import algorithms
from peerflow.actors import RunResult

from ._consensus import FLOOR, PLOTTED, consensus_metrics, in_process_timeout
from ._output import write_summary
from ._plots import figure, plot_lines
from ._table import Table
from ._traffic import traffic_metrics

if TYPE_CHECKING:
    from ._job import Job

SHOWN = ("initial_spread", "final_spread", "distance_to_average", "slem", "spectral_gap")
"""The consensus metrics a CHOCO-gossip run reports (spreads are the largest over entries)."""


def choco_gossip_executors(job: Job) -> dict[str, Any]:
    """One executor per node, each with a vector of ``dimension`` entries uniform in
    [0, 1) drawn from the job's seed."""
    tuned = algorithms.ChocoGossipTunables.from_extra(job.extra)
    nodes = job.network.node_ids
    draws = np.random.default_rng(job.seed).uniform(size=(len(nodes), tuned.dimension))
    timeout = in_process_timeout(job.sync_timeout, len(nodes))
    return {node: algorithms.ChocoGossipExecutor(x, sync_timeout=timeout)
            for node, x in zip(nodes, draws, strict=True)}


def report_choco_gossip(result: RunResult, job: Job, executors: dict[str, Any],
                        out: Path | None) -> Table:
    """Write summary.json and the plots (if ``out``); the summary table."""
    metrics: dict[str, Any] = {}
    if result.ok:  # the spreads and the gap; the bound and matrix form are exact gossip's
        exact, _ = consensus_metrics(job.network, executors, job.iterations)
        metrics = {key: exact[key] for key in SHOWN} | traffic_metrics(executors)
    rows = [("status", result.status), ("nodes", str(len(executors)))]
    rows += [(key, str(value)) for key, value in job.config.extra.items()]
    rows += [(name.replace("_", " "), "n/a" if value is None else f"{value:.4g}")
             for name, value in metrics.items()]
    rows.append(("wall time", f"{result.wall_time:.3f} s"))
    if out is not None:
        write_summary(out, "choco-gossip", result, job.config, metrics=metrics)
        if result.ok:
            _plot(out, executors)
    return Table("choco-gossip", rows)


def _plot(out: Path, executors: dict[str, Any]) -> None:
    """Each node's largest distance to the true average, per iteration and per byte."""
    average = np.mean([ex.initial_value for ex in executors.values()], axis=0)
    step = max(1, math.ceil(len(executors) / PLOTTED))
    errors = {node: np.maximum(np.abs(np.asarray(ex.value_history) - average).max(axis=1),
                               FLOOR) for node, ex in list(executors.items())[::step]}
    plot_lines(out / "consensus_error.png", errors, log=True, ylabel="max_k |x_ik - average_k|",
               title="choco-gossip: distance to the true average")
    with figure(out / "consensus_error_bytes.png", "choco-gossip: distance to the true "
                "average against bytes sent", "bytes sent by the node",
                "max_k |x_ik - average_k|", logy=True, legend_beside=True) as axes:
        for node, error in list(errors.items())[:10]:
            axes.plot(executors[node].bytes_sequence, error, lw=1.2, label=node)
