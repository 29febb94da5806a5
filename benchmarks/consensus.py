"""Consensus error against the spectral-gap bound, and the effect of topology.

For a symmetric doubly stochastic W (Metropolis-Hastings weights on an
undirected graph), ||x(t) - mean|| <= SLEM(W)^t ||x(0) - mean||: each topology's
measured error per iteration is plotted with its bound, and every run is checked
against the centralized matrix form W^t x(0).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

import peerflow
from peerflow.actors import Config
from peerflow.algorithms import (
    TOPOLOGIES,
    ConsensusExecutor,
    describe,
    metropolis_hastings,
    mixing_matrix,
)
from peerflow.jobs import plot_lines

TOLERANCE = 1e-6


def topology_run(topology: str, n: int, iterations: int) -> dict[str, Any]:
    """Run consensus on one topology; error per iteration, its bound and the checks."""
    network = metropolis_hastings(TOPOLOGIES[topology](n, 0))
    x0 = np.random.default_rng(0).uniform(size=n)
    executors = {node: ConsensusExecutor(float(x)) for node, x in zip(network.node_ids, x0,
                                                                        strict=True)}
    result = peerflow.simulate(Config(network, {"iterations": iterations}), executors)
    if not result.ok:
        raise RuntimeError(f"consensus on {topology} aborted: {result.reason}")
    history = np.array([executors[node].value_history for node in network.node_ids])
    error = np.linalg.norm(history - x0.mean(), axis=0)
    report = describe(network)
    bound = error[0] * report.slem ** np.arange(iterations + 1)
    return {"topology": topology, "nodes": n, "edges": report.edges,
            "slem": report.slem, "spectral_gap": report.spectral_gap,
            "error": error.tolist(), "bound": bound.tolist(),
            "within_bound": bool(np.all(error <= bound * (1 + 1e-9) + 1e-12 * error[0])),
            "iterations_to_tolerance": _first_below(error / error[0], TOLERANCE),
            "bound_iterations_to_tolerance": _bound_iterations(report.slem),
            "matrix_form_deviation": _matrix_deviation(network, x0, history),
            "wall_s": result.wall_time}


def suite(topologies: list[str], n: int, iterations: int, out: Path) -> dict[str, Any]:
    """Every topology; writes consensus_error.png with each error curve and its bound."""
    rows = [topology_run(t, n, iterations) for t in topologies]
    curves: dict[str, list[float]] = {}
    bounds: dict[str, list[float]] = {}
    for row in rows:  # clipped at double precision's floor, where both curves end anyway
        floor = 1e-16 * row["error"][0]
        curves[row["topology"]] = np.maximum(row["error"], floor).tolist()
        bounds[f"{row['topology']} bound"] = np.maximum(row["bound"], floor).tolist()
    plot_lines(out / "consensus_error.png", curves, log=True, ylabel="||x(t) - mean||",
               title=f"consensus error (solid) against its bound SLEM^t (dashed), N={n}",
               references=bounds)
    return {"nodes": n, "iterations": iterations, "rows": rows}


def markdown(results: dict[str, Any]) -> str:
    """The table: gap, iterations to 1e-6 measured and by the bound, matrix-form check."""
    lines = [f"| topology (N={results['nodes']}) | edges | spectral gap | iterations to 1e-6 "
             "| bound's iterations | within bound | max deviation from W^t x0 |",
             "|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        lines.append(f"| {r['topology']} | {r['edges']} | {r['spectral_gap']:.4f} "
                     f"| {r['iterations_to_tolerance'] or '>' + str(results['iterations'])} "
                     f"| {r['bound_iterations_to_tolerance']} | {r['within_bound']} "
                     f"| {r['matrix_form_deviation']:.1e} |")
    return "\n".join(lines)


def _first_below(relative: np.ndarray, tolerance: float) -> int | None:
    below = np.flatnonzero(relative <= tolerance)
    return int(below[0]) if below.size else None


def _bound_iterations(slem: float) -> int | str:
    if slem <= 0:
        return 1
    if slem >= 1:
        return "never"
    return math.ceil(math.log(TOLERANCE) / math.log(slem))


def _matrix_deviation(network: Any, x0: np.ndarray, history: np.ndarray) -> float:
    w, _ = mixing_matrix(network)
    x, worst = x0.copy(), 0.0
    for t in range(history.shape[1]):
        worst = max(worst, float(np.max(np.abs(history[:, t] - x))))
        x = w @ x
    return worst
