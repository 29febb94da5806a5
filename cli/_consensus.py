"""``peerflow simulate consensus``: average random values over a network."""

from __future__ import annotations

import numpy as np

from peerflow.actors import Config, Network, RunResult
from peerflow.algorithms import ConsensusExecutor, describe, mixing_matrix

from . import _render as render

FLOOR = 1e-17
"""Errors below double precision are drawn at this floor on the log plot."""


def consensus_executors(network: Network, seed: int, sync_timeout: float
                        ) -> dict[str, ConsensusExecutor]:
    """One executor per node, initial values uniform in [0, 1) from ``seed``."""
    x0 = np.random.default_rng(seed).uniform(size=len(network.nodes))
    return {node: ConsensusExecutor(float(x), sync_timeout=sync_timeout)
            for node, x in zip(network.node_ids, x0, strict=True)}


def consensus_metrics(network: Network, executors: dict[str, ConsensusExecutor],
                      iterations: int) -> dict[str, float]:
    """Final spread, distance to the true average, and the spectral-gap prediction."""
    x0 = np.array([ex.initial_value for ex in executors.values()])
    final = np.array([ex.current_value for ex in executors.values()])
    w, _ = mixing_matrix(network)
    report = describe(network)
    return {
        "initial_spread": float(np.ptp(x0)),
        "final_spread": float(np.ptp(final)),
        "true_average": float(x0.mean()),
        "distance_to_average": float(np.max(np.abs(final - x0.mean()))),
        "slem": report.slem,
        "spectral_gap": report.spectral_gap,
        "predicted_distance_bound": float(report.slem ** iterations * np.linalg.norm(
            x0 - x0.mean())) if report.doubly_stochastic else float("nan"),
        "matrix_form_error": float(np.max(np.abs(
            final - np.linalg.matrix_power(w, iterations) @ x0))),
    }


def report_consensus(result: RunResult, config: Config,
                     executors: dict[str, ConsensusExecutor], iterations: int,
                     out: render.Path | None) -> None:
    """Print the summary table and write summary.json and the per-node plot."""
    metrics = consensus_metrics(config.network, executors, iterations) if result.ok else {}
    rows = [("status", result.status), ("nodes", str(len(executors))),
            ("iterations", str(iterations))]
    rows += [(name.replace("_", " "), f"{value:.3e}") for name, value in metrics.items()]
    rows.append(("wall time", f"{result.wall_time:.3f} s"))
    render.print_table("consensus", rows)
    if out is None:
        return
    summary = {"algorithm": "consensus", **result.to_dict(), "metrics": metrics,
               "config": config.to_dict()}
    render.write_json(out / "summary.json", summary)
    histories = {node: np.asarray(ex.value_history, dtype=float)
                 for node, ex in executors.items()}
    render.plot_lines(out / "consensus.png", histories, title="consensus: value per node",
                      ylabel="value")
    if metrics:
        average, slem = metrics["true_average"], metrics["slem"]
        errors = {node: np.maximum(np.abs(h - average), FLOOR) for node, h in histories.items()}
        norm0 = float(np.linalg.norm([e[0] for e in errors.values()]))
        errors["SLEM^t ||x(0) - avg||"] = np.maximum(norm0 * slem ** np.arange(iterations + 1),
                                                      FLOOR)
        render.plot_lines(out / "consensus_error.png", errors, log=True, ylabel="|x_i - average|",
                          title="consensus: distance to the true average")
