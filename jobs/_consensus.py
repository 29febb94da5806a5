"""Consensus jobs: average values (random, or given per node) over a network; their
metrics and plots."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from peerflow.actors import Config, Network, RunResult, Schedule
from peerflow.algorithms import (
    ARPACK_MAXITER,
    PRODUCT_NODES,
    ConsensusExecutor,
    MixingSchedule,
    consensus_reference,
    describe,
    describe_schedule,
)

from ._errors import JobError, parse_file
from ._output import reached_results, write_summary
from ._plots import FLOOR, error_series, plot_lines
from ._table import Table
from ._traffic import traffic_metrics

PLOTTED = 100
"""The plots draw the first nodes only: a line per node of 100,000 is a black square."""
SECONDS_PER_NODE = 0.005
"""In one process all nodes share one event loop, so a pass over them (the config phase,
one iteration) takes time in proportion to their number: about this much per node on
a machine as loaded as a busy CI runner."""


def consensus_executors(network: Network, seed: int, sync_timeout: float,
                        initial_values: Mapping[str, Any] | None = None
                        ) -> dict[str, ConsensusExecutor]:
    """One executor per node, the sync timeout raised for many nodes
    (``in_process_timeout``); initial values from ``initial_values`` (node -> number
    or array, see ``load_initial_values``) or else uniform in [0, 1) from ``seed``."""
    if initial_values is None:
        draws = np.random.default_rng(seed).uniform(size=len(network.nodes))
        initial_values = {node: float(x) for node, x in zip(network.node_ids, draws,
                                                             strict=True)}
    timeout = in_process_timeout(sync_timeout, len(network.nodes))
    return {node: ConsensusExecutor(initial_values[node], sync_timeout=timeout)
            for node in network.node_ids}


def load_initial_values(path: Path, network: Network) -> dict[str, Any]:
    """Read a JSON map node -> initial value (a number, or a list of numbers for a
    vector) with one entry per node of ``network``. Numbers stay as written (an int
    stays an int, as NVFlare's ``ConsensusExecutor`` keeps it); lists become float64
    arrays, all of one shape.

    Raises:
        JobError: the file is unreadable or not JSON, a node is missing or unknown,
            or a value is not a number or a list of numbers of the common shape.
    """
    where = f"initial values file {str(path)!r}"
    data = parse_file(path, "initial values file", json.loads, json.JSONDecodeError, "JSON")
    if not isinstance(data, dict):
        raise JobError(f"{where} must hold a JSON object node -> value, got "
                       f"{type(data).__name__}")
    missing = [node for node in network.node_ids if node not in data]
    unknown = sorted(set(data) - set(network.node_ids))
    if missing or unknown:
        raise JobError(f"{where} does not match the network: no value for {missing[:5]}, "
                       f"values for unknown nodes {unknown[:5]}")
    values = {node: _initial_value(data[node], f"{where}: {node!r}")
              for node in network.node_ids}
    shapes = {np.shape(value) for value in values.values()}
    if len(shapes) > 1:
        raise JobError(f"{where}: values must all have one shape, got {sorted(shapes)}")
    return values


def _initial_value(value: Any, where: str) -> Any:
    if _finite_number(value):
        return value
    if isinstance(value, list) and value and all(_finite_number(v) for v in value):
        return np.asarray(value, dtype=np.float64)
    raise JobError(f"{where} must be a finite number or a non-empty list of finite "
                   f"numbers, got {value!r}")


def _finite_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def in_process_timeout(timeout: float, nodes: int) -> float:
    """``timeout``, raised to ``SECONDS_PER_NODE`` per node: what a wait for the other
    nodes of a one-process run may take before it means that something is stuck."""
    return max(timeout, SECONDS_PER_NODE * nodes)


def consensus_metrics(network: Network, executors: dict[str, ConsensusExecutor],
                      iterations: int) -> tuple[dict[str, float | None], list[str]]:
    """Final spread, distance to the true average, the spectral-gap prediction, and notes
    on the figures that could not be given (None)."""
    x0 = np.array([ex.initial_value for ex in executors.values()], dtype=float)
    final = np.array([ex.current_value for ex in executors.values()], dtype=float)
    average = x0.mean(axis=0)
    mixings = MixingSchedule(network)
    slem, sigma, period, doubly = _contraction(network, mixings)
    notes = []
    if math.isnan(slem):
        slem = None
        notes.append(f"slem, spectral gap and bound not computed: ARPACK did not converge in "
                     f"{ARPACK_MAXITER} restarts ({len(x0)} nodes)" if period == 1 else
                     f"slem, spectral gap and bound not computed: the period's product is "
                     f"not formed above {PRODUCT_NODES} nodes")
    elif period > 1:
        notes.append(f"time-varying network (period {period}): slem is the per-iteration "
                     "rate, the period-th root of the period product's contraction")
    if average.ndim:
        notes.append(f"true average not shown: the values are vectors of {average.size} "
                     "entries (spreads and distances are the largest over the entries)")
    bound = None
    if slem is not None and doubly:
        bound = float(sigma ** (iterations // period) * np.linalg.norm(x0 - average))
    elif not doubly:
        notes.append("no distance bound: W is not doubly stochastic, so x converges to a "
                     "weighted average, not the true average")
    metrics: dict[str, float | None] = {
        "initial_spread": float(np.max(np.ptp(x0, axis=0))),
        "final_spread": float(np.max(np.ptp(final, axis=0))),
        "true_average": float(average) if average.ndim == 0 else None,
        "distance_to_average": float(np.max(np.abs(final - average))),
        "slem": slem,
        "spectral_gap": None if slem is None else 1.0 - slem,
        "predicted_distance_bound": bound,
        "matrix_form_error": float(np.max(np.abs(
            final - consensus_reference(mixings.matrix, x0, iterations)[-1]))),
    }
    return metrics, notes


def _contraction(network: Network, mixings: MixingSchedule) -> tuple[float, float, int, bool]:
    """(per-iteration rate, contraction over one period, period, doubly stochastic): the
    SLEM of a static W; of a schedule, its period product's (``describe_schedule``)."""
    if isinstance(network, Schedule):
        report = describe_schedule(network)
        return (report.rate_per_iteration, report.product_sigma2, report.period,
                report.doubly_stochastic)
    static = describe(network, mixings.matrix(0))
    return static.slem, static.slem, 1, static.doubly_stochastic


def report_consensus(result: RunResult, config: Config,
                     executors: dict[str, ConsensusExecutor], iterations: int,
                     out: Path | None) -> Table:
    """Write summary.json (an unfinished run: what each node reached) and the per-node
    plots (if ``out``); the summary table."""
    metrics, notes = (consensus_metrics(config.network, executors, iterations) if result.ok
                      else ({}, []))
    metrics.update(traffic_metrics(executors) if result.ok else {})
    rows = [("status", result.status), ("nodes", str(len(executors))),
            ("iterations", str(iterations))]
    rows += [(name.replace("_", " "), "n/a" if value is None else f"{value:.3e}")
             for name, value in metrics.items()]
    rows.append(("wall time", f"{result.wall_time:.3f} s"))
    rows += [("note", note) for note in notes]
    table = Table("consensus", rows)
    if out is not None:
        summary = write_summary(out, "consensus", result, config, table, metrics=metrics,
                                notes=notes, **reached_results(result, executors))
        plot_consensus(summary, out)
    return table


def plot_consensus(summary: Mapping[str, Any], out: Path) -> None:
    """Draw a consensus run's plots from its summary: each node's value and, if the true
    average is known, its distance to it with the spectral bound."""
    results = summary["results"]
    step = max(1, math.ceil(len(results) / PLOTTED))  # evenly spread over the network
    histories = {node: np.asarray(result["value_history"], dtype=float)
                 for node, result in list(results.items())[::step]}
    shown = "" if step == 1 else f" ({len(histories)} of {len(results)} nodes)"
    plot_lines(out / "consensus.png", histories, ylabel="value",
               title=f"consensus: value per node{shown}")
    metrics = summary["metrics"]
    average = metrics.get("true_average")
    if average is None:
        return
    errors = error_series(histories, average)
    bound: dict[str, np.ndarray] = {}
    slem = metrics["slem"]
    if slem is not None:
        initial = np.array([result["value_history"][0] for result in results.values()],
                           dtype=float)
        norm0 = float(np.linalg.norm(initial - average))
        period = _period(summary["config"]["network"])
        iterations = summary["config"]["extra"]["iterations"]
        whole = period * (np.arange(iterations + 1) // period)  # a schedule's: whole periods
        label = "SLEM^t" if period == 1 else f"sigma2(period product)^floor(t/{period})"
        bound[f"bound: {label} ||x(0) - avg||"] = np.maximum(norm0 * slem ** whole, FLOOR)
    plot_lines(out / "consensus_error.png", errors, log=True, ylabel="|x_i - average|",
               title=f"consensus: distance to the true average{shown}", references=bound)


def _period(network: Any) -> int:
    """The period of a summary's network: a schedule is stored as its period's list of
    networks (``Schedule.to_dict``), a static network as one mapping."""
    return len(network) if isinstance(network, list) else 1
