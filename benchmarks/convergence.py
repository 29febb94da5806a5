"""Convergence: every learning algorithm on the built-in problems, against theory and NVFlare.

- least squares (float64, full batch, known optimum), on an undirected and a
  directed random graph: distance to the optimum per iteration, iterations to
  reach 1e-6, and the largest deviation from the centralized matrix form over the
  whole run (the algorithms' contract);
- blobs (unbalanced split) and two moons (after NVFlare's example, smaller: 6 nodes,
  1000 iterations): train and test loss per epoch, test accuracy, wall time. NVFlare's
  own two-moons job, run by both frameworks on the same data, is the NVFlare suite's
  (``benchmarks/nvflare.py``), which alone compares times with NVFlare.

``python -m benchmarks.convergence --out DIR`` writes DIR/convergence.json,
DIR/REPORT.md and one PNG per table; ``--quick`` runs a tenth of the iterations.
Runs use the non-strict in-memory transport and one torch thread.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import peerflow
from peerflow.actors import Config, Network
from peerflow.algorithms import (
    LEARNING_EXECUTORS,
    PROBLEMS,
    Problem,
    column_stochastic,
    dgd_reference,
    extra_reference,
    flatten,
    gt_reference,
    gtadam_reference,
    metropolis_hastings,
    mixing_matrix,
    push_diging_reference,
    random_connected,
    random_directed,
    subgradient_push_reference,
)
from peerflow.jobs import epoch_axis, epoch_length, learning_metrics, plot_lines, write_json

REFERENCES: dict[str, tuple[Callable[..., np.ndarray], bool]] = {
    "dgd": (dgd_reference, False), "gt": (gt_reference, False),
    "gtadam": (gtadam_reference, False), "extra": (extra_reference, False),
    "subgradient-push": (subgradient_push_reference, True),
    "push-diging": (push_diging_reference, True),
}
"""Each algorithm's matrix form, and whether it mixes with the push (column) matrix."""
GRAPHS = {"undirected": lambda: metropolis_hastings(random_connected(6, seed=0)),
          "directed": lambda: metropolis_hastings(random_directed(6, seed=1))}
TOLERANCE = 1e-6
NVFLARE_NOTE = [
    "## Against NVFlare", "",
    "This suite's two-moons is peerflow's smaller version of NVFlare's example (320 samples "
    "per node), so neither its losses nor its times are NVFlare's. NVFlare's own two-moons "
    "GT job, run by NVFlare and by peerflow on the same data and seeds, whole command against "
    "whole command, is the NVFlare section of `peerflow bench` (`--only nvflare`): the one "
    "place that compares times with NVFlare, computed from the two wall times it shows.", ""]


def run(algorithm: str, problem: Problem, network: Network, iterations: int,
        track: bool = False) -> dict[str, Any]:
    """One run: its executors, wall time and (if tracked) the (nodes, iterations + 1, dim)
    trajectory of the parameters."""
    trace: dict[str, list[np.ndarray]] = {node: [] for node in network.node_ids}
    executors = {}
    for i, node in enumerate(network.node_ids):
        executors[node] = LEARNING_EXECUTORS[algorithm](
            **problem.node_kwargs(i), sync_timeout=60.0,
            on_step=(lambda t, state, node=node: trace[node].append(flatten(state.x)))
            if track else None)
        trace[node].append(flatten(executors[node].trainable()))
    start = time.perf_counter()
    result = peerflow.simulate(Config(network, {"iterations": iterations,
                                                "stepsize": problem.stepsize}), executors)
    if not result.ok:
        raise RuntimeError(f"{algorithm} on {problem.name} aborted: {result.reason}")
    return {"executors": executors, "wall_time": time.perf_counter() - start,
            "trajectory": np.array([trace[node] for node in network.node_ids])}


def quadratic_row(algorithm: str, problem: Problem, network: Network, iterations: int
                  ) -> tuple[dict[str, Any], list[float]]:
    """Distance to the optimum per iteration, and the deviation from the matrix form."""
    outcome = run(algorithm, problem, network, iterations, track=True)
    trajectory = outcome["trajectory"].transpose(1, 0, 2)  # (iterations + 1, nodes, dim)
    reference, push = REFERENCES[algorithm]
    matrix = column_stochastic(network)[0] if push else mixing_matrix(network)[0]
    expected = reference(matrix, trajectory[0], problem.gradients, problem.stepsize, iterations)
    distance = np.linalg.norm(trajectory - problem.optimum, axis=2).max(axis=1)
    reached = np.flatnonzero(distance < TOLERANCE)
    return {"algorithm": algorithm, "final_distance": float(distance[-1]),
            "iterations_to_tolerance": int(reached[0]) if len(reached) else None,
            "matrix_form_deviation": float(np.abs(trajectory - expected).max()),
            "wall_time": outcome["wall_time"]}, distance.tolist()


def learning_row(algorithm: str, problem: Problem, network: Network, iterations: int
                 ) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Final metrics (as the CLI reports them) and the mean loss curves per epoch."""
    outcome = run(algorithm, problem, network, iterations)
    executors = outcome["executors"]
    metrics = learning_metrics(problem, executors)
    curves = {kind: np.mean([[record.loss for record in getattr(ex, f"{kind}_loss_sequence")]
                             for ex in executors.values()], axis=0).tolist()
              for kind in ("train", "test")}
    curves["epoch_lengths"] = [epoch_length(ex) for ex in executors.values()]
    return {"algorithm": algorithm, **metrics, "wall_time": outcome["wall_time"]}, curves


def quadratic_suite(iterations: int, out: Path) -> dict[str, Any]:
    """Least squares on each graph, every algorithm."""
    problem, suite = PROBLEMS["least-squares"](6, 0), {}
    for graph, build in GRAPHS.items():
        rows, curves = [], {}
        for algorithm in REFERENCES:
            row, curves[algorithm] = quadratic_row(algorithm, problem, build(), iterations)
            rows.append(row)
        plot_lines(out / f"least_squares_{graph}.png", _finite(curves), log=True,
                   title=f"least squares, {graph} graph: max distance to the optimum",
                   ylabel="max_i ||x_i - x*||")
        suite[graph] = {"rows": rows, "distance": curves}
    return suite


def learning_suite(name: str, iterations: int, out: Path) -> dict[str, Any]:
    """A stochastic problem on the undirected graph, every algorithm."""
    problem, rows, curves = PROBLEMS[name](6, 0), [], {}
    for algorithm in REFERENCES:
        row, curves[algorithm] = learning_row(algorithm, problem, GRAPHS["undirected"](),
                                              iterations)
        rows.append(row)
    xlabel, x = epoch_axis(curves["gt"]["epoch_lengths"], iterations)
    for kind in ("train", "test"):
        plot_lines(out / f"{name.replace('-', '_')}_{kind}_loss.png",
                   {a: c[kind] for a, c in curves.items()}, ylabel="mean loss over nodes",
                   title=f"{name}: {kind} loss (mean over 6 nodes)", xlabel=xlabel, x=x)
    return {"rows": rows, "loss": curves}


def report(results: dict[str, Any]) -> str:
    """The markdown tables of REPORT.md."""
    lines = ["# Convergence", ""]
    if results["quick"]:
        lines += ["*Quick run: a tenth of the iterations.*", ""]
    for graph, suite in results["least-squares"].items():
        lines += _table(f"Least squares, {graph} graph (6 nodes, float64, full batch)", {
            "final max distance to x*": lambda r: f"{r['final_distance']:.3g}",
            "iterations to 1e-6": lambda r: _or_dash(r["iterations_to_tolerance"]),
            "max deviation from matrix form": lambda r: f"{r['matrix_form_deviation']:.2g}",
            "wall s": lambda r: f"{r['wall_time']:.2f}"}, suite["rows"])
    for name in ("blobs", "two-moons"):
        lines += _table(f"{name} (6 nodes, undirected)", {
            "train loss": lambda r: f"{r['train_loss_start']:.3f} -> {r['train_loss']:.3f}",
            "test loss": lambda r: f"{r['test_loss']:.3f}",
            "test accuracy": lambda r: f"{r['test_accuracy']:.3f}",
            "consensus max abs": lambda r: f"{r['consensus_max_abs']:.2g}",
            "wall s": lambda r: f"{r['wall_time']:.1f}"}, results[name]["rows"])
    return "\n".join([*lines, *NVFLARE_NOTE])


def _table(title: str, columns: dict[str, Callable[[dict[str, Any]], str]],
           rows: list[dict[str, Any]]) -> list[str]:
    lines = [f"## {title}", "", "| algorithm | " + " | ".join(columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    lines += ["| " + " | ".join([row["algorithm"], *(cell(row) for cell in columns.values())])
              + " |" for row in rows]
    return [*lines, ""]


def _or_dash(value: Any) -> str:
    return "—" if value is None else str(value)


def _finite(curves: dict[str, list[float]]) -> dict[str, list[float]]:
    return {name: [v if np.isfinite(v) else np.nan for v in c] for name, c in curves.items()}


def main(argv: list[str] | None = None) -> None:
    """Run every suite and write DIR/convergence.json, DIR/REPORT.md and the plots."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.convergence")
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    parser.add_argument("--quick", action="store_true", help="a tenth of the iterations")
    args = parser.parse_args(argv)
    os.environ.pop("PEERFLOW_STRICT", None)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    scale = 10 if args.quick else 1
    results = {"least-squares": quadratic_suite(300 // scale, args.out),
               "blobs": learning_suite("blobs", 500 // scale, args.out),
               "two-moons": learning_suite("two-moons", 1000 // scale, args.out),
               "quick": args.quick}
    write_json(args.out / "convergence.json", results)
    text = report(results)
    (args.out / "REPORT.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
