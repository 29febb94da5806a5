"""Consensus on time-varying topologies: the one-peer exponential graph against a ring,
the static exponential graph and random matchings.

Each run goes through the runtime (in memory) and is checked against the product of
its per-iteration matrices. Figures per topology and node count: the relative error
||x(t) - mean|| / ||x(0) - mean|| per iteration, the iterations to reach 1e-6, the
messages sent to get there (one per arc used at each iteration) and the ratios to the
one-peer exponential graph's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import peerflow
from peerflow.actors import Config, Network, Schedule
from peerflow.algorithms import (
    SCHEDULES,
    TOPOLOGIES,
    ConsensusExecutor,
    MixingSchedule,
    consensus_reference,
    metropolis_hastings,
)
from peerflow.jobs import plot_lines

TOLERANCE = 1e-6
TOPOLOGY_NAMES = ("ring", "exponential", "random-matching", "exponential-one-peer")
BASELINE = "exponential-one-peer"
FLOOR = 1e-16


def network_of(name: str, n: int) -> Network:
    """A built-in schedule or static topology (Metropolis-Hastings weights), seed 0."""
    if name in SCHEDULES:
        return SCHEDULES[name](n, 0)
    return metropolis_hastings(TOPOLOGIES[name](n, 0))


def arcs_per_iteration(network: Network, iterations: int) -> np.ndarray:
    """Messages sent at each iteration: the arcs of that iteration's graph."""
    graphs = network.networks if isinstance(network, Schedule) else (network,)
    arcs = [sum(len(node.neighbors) for node in graph.nodes) for graph in graphs]
    return np.array([arcs[t % len(arcs)] for t in range(iterations)])


def topology_run(name: str, n: int, iterations: int) -> dict[str, Any]:
    """Run consensus on one topology: relative error per iteration, iterations and
    messages to ``TOLERANCE``, deviation from the matrix form."""
    network = network_of(name, n)
    x0 = np.random.default_rng(0).uniform(size=n)
    executors = {node: ConsensusExecutor(float(x)) for node, x in zip(network.node_ids, x0,
                                                                        strict=True)}
    result = peerflow.simulate(Config(network, {"iterations": iterations}), executors)
    if not result.ok:
        raise RuntimeError(f"consensus on {name} aborted: {result.reason}")
    history = np.array([executors[node].value_history for node in network.node_ids]).T
    error = np.linalg.norm(history - x0.mean(), axis=1) / np.linalg.norm(x0 - x0.mean())
    expected = consensus_reference(MixingSchedule(network).matrix, x0, iterations)
    below = np.flatnonzero(error <= TOLERANCE)
    reached = int(below[0]) if below.size else None
    sent = np.concatenate([[0], np.cumsum(arcs_per_iteration(network, iterations))])
    return {"topology": name, "nodes": n,
            "period": network.period if isinstance(network, Schedule) else 1,
            "messages_per_iteration": float(sent[-1] / max(iterations, 1)),
            "error": error.tolist(), "iterations_to_tolerance": reached,
            "messages_to_tolerance": None if reached is None else int(sent[reached]),
            "matrix_form_deviation": float(np.abs(history - expected).max()),
            "wall_s": result.wall_time}


def suite(out: Path, quick: bool) -> dict[str, Any]:
    """Every topology at two node counts (a power of two and not); one plot per count."""
    counts, iterations = ((32, 48), 3000) if quick else ((64, 100), 12_000)
    rows = []
    for n in counts:
        runs = [topology_run(name, n, iterations) for name in TOPOLOGY_NAMES]
        _ratios(runs)
        rows += runs
        plot_lines(out / f"time_varying_consensus_{n}.png",
                   {r["topology"]: np.maximum(r["error"], FLOOR).tolist() for r in runs},
                   log=True, ylabel="||x(t) - mean|| / ||x(0) - mean||",
                   title=f"consensus on static and time-varying topologies (N={n})")
    return {"counts": list(counts), "iterations": iterations, "tolerance": TOLERANCE,
            "rows": rows, "plots": [f"time_varying_consensus_{n}.png" for n in counts]}


def markdown(results: dict[str, Any]) -> str:
    """The table: iterations and messages to 1e-6, each as a multiple of the one-peer
    exponential graph's, and the matrix-form check."""
    lines = [f"| topology | N | period | messages / iteration | iterations to "
             f"{results['tolerance']:g} | x one-peer | messages to {results['tolerance']:g} "
             "| x one-peer | max deviation from the matrix form |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        lines.append(f"| {r['topology']} | {r['nodes']} | {r['period']} "
                     f"| {r['messages_per_iteration']:.4g} "
                     f"| {_shown(r['iterations_to_tolerance'], results['iterations'])} "
                     f"| {_ratio(r['iteration_ratio'])} "
                     f"| {_shown(r['messages_to_tolerance'], None)} "
                     f"| {_ratio(r['message_ratio'])} | {r['matrix_form_deviation']:.1e} |")
    plots = ", ".join(results["plots"])
    return "\n".join(lines) + f"\n\nPlots: {plots}."


def _ratios(runs: list[dict[str, Any]]) -> None:
    """Each run's iterations and messages to tolerance over the one-peer graph's."""
    base = next(r for r in runs if r["topology"] == BASELINE)
    for run in runs:
        for key, ratio in (("iterations_to_tolerance", "iteration_ratio"),
                           ("messages_to_tolerance", "message_ratio")):
            ok = run[key] is not None and base[key]
            run[ratio] = run[key] / base[key] if ok else None


def _shown(value: int | None, limit: int | None) -> str:
    if value is None:
        return f"> {limit}" if limit is not None else "n/a"
    return f"{value:,}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"
