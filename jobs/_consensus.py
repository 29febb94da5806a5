"""Consensus jobs: average random values over a network; their metrics and plots."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np

from peerflow.actors import Config, Network, RunResult
from peerflow.algorithms import (
    ARPACK_MAXITER,
    ConsensusExecutor,
    consensus_reference,
    describe,
    sparse_mixing_matrix,
)

from ._output import plot_lines, write_json
from ._table import Table

FLOOR = 1e-17
"""Errors below double precision are drawn at this floor on the log plot."""
PLOTTED = 100
"""The plots draw the first nodes only: a line per node of 100,000 is a black square."""
SECONDS_PER_NODE = 0.005
"""In one process all nodes share one event loop, so a pass over them (the config phase,
one iteration) takes time in proportion to their number: about this much per node on
a machine as loaded as a busy CI runner."""


def consensus_executors(network: Network, seed: int, sync_timeout: float
                        ) -> dict[str, ConsensusExecutor]:
    """One executor per node, initial values uniform in [0, 1) from ``seed``; the sync
    timeout raised for many nodes (``in_process_timeout``)."""
    x0 = np.random.default_rng(seed).uniform(size=len(network.nodes))
    timeout = in_process_timeout(sync_timeout, len(network.nodes))
    return {node: ConsensusExecutor(float(x), sync_timeout=timeout)
            for node, x in zip(network.node_ids, x0, strict=True)}


def in_process_timeout(timeout: float, nodes: int) -> float:
    """``timeout``, raised to ``SECONDS_PER_NODE`` per node: what a wait for the other
    nodes of a one-process run may take before it means that something is stuck."""
    return max(timeout, SECONDS_PER_NODE * nodes)


def consensus_metrics(network: Network, executors: dict[str, ConsensusExecutor],
                      iterations: int) -> tuple[dict[str, float | None], list[str]]:
    """Final spread, distance to the true average, the spectral-gap prediction, and notes
    on the figures that could not be given (None)."""
    x0 = np.array([ex.initial_value for ex in executors.values()])
    final = np.array([ex.current_value for ex in executors.values()])
    w, _ = sparse_mixing_matrix(network)
    report = describe(network, w)
    notes = []
    slem: float | None = report.slem
    if math.isnan(report.slem):
        slem = None
        notes.append(f"slem, spectral gap and bound not computed: ARPACK did not converge in "
                     f"{ARPACK_MAXITER} restarts ({len(x0)} nodes)")
    bound = None
    if slem is not None and report.doubly_stochastic:
        bound = float(slem ** iterations * np.linalg.norm(x0 - x0.mean()))
    elif not report.doubly_stochastic:
        notes.append("no distance bound: W is not doubly stochastic, so x converges to a "
                     "weighted average, not the true average")
    metrics: dict[str, float | None] = {
        "initial_spread": float(np.ptp(x0)),
        "final_spread": float(np.ptp(final)),
        "true_average": float(x0.mean()),
        "distance_to_average": float(np.max(np.abs(final - x0.mean()))),
        "slem": slem,
        "spectral_gap": None if slem is None else 1.0 - slem,
        "predicted_distance_bound": bound,
        "matrix_form_error": float(np.max(np.abs(
            final - consensus_reference(w, x0, iterations)[-1]))),
    }
    return metrics, notes


def report_consensus(result: RunResult, config: Config,
                     executors: dict[str, ConsensusExecutor], iterations: int,
                     out: Path | None) -> Table:
    """Write summary.json and the per-node plots (if ``out``); the summary table."""
    metrics, notes = (consensus_metrics(config.network, executors, iterations) if result.ok
                      else ({}, []))
    rows = [("status", result.status), ("nodes", str(len(executors))),
            ("iterations", str(iterations))]
    rows += [(name.replace("_", " "), "n/a" if value is None else f"{value:.3e}")
             for name, value in metrics.items()]
    rows.append(("wall time", f"{result.wall_time:.3f} s"))
    rows += [("note", note) for note in notes]
    if out is not None:
        write_json(out / "summary.json", {"algorithm": "consensus", **result.to_dict(),
                                          "metrics": metrics, "notes": notes,
                                          "config": config.to_dict()})
        _plot(out, executors, metrics, iterations)
    return Table("consensus", rows)


def _plot(out: Path, executors: dict[str, ConsensusExecutor],
          metrics: dict[str, float | None], iterations: int) -> None:
    histories = {node: np.asarray(ex.value_history, dtype=float)
                 for node, ex in itertools.islice(executors.items(), PLOTTED)}
    shown = "" if len(executors) <= PLOTTED else f" ({PLOTTED} of {len(executors)} nodes)"
    plot_lines(out / "consensus.png", histories, ylabel="value",
                      title=f"consensus: value per node{shown}")
    average = metrics.get("true_average")
    if average is None:
        return
    errors = {node: np.maximum(np.abs(h - average), FLOOR) for node, h in histories.items()}
    slem = metrics["slem"]
    if slem is not None:
        initial = np.array([ex.initial_value for ex in executors.values()], dtype=float)
        norm0 = float(np.linalg.norm(initial - average))
        errors["SLEM^t ||x(0) - avg||"] = np.maximum(norm0 * slem ** np.arange(iterations + 1),
                                                      FLOOR)
    plot_lines(out / "consensus_error.png", errors, log=True, ylabel="|x_i - average|",
                      title=f"consensus: distance to the true average{shown}")
