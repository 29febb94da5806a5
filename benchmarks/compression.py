"""Compressed communication: train loss against bytes sent, CHOCO-SGD with top-k 1%
against uncompressed DGD, on least squares (a 1,000-parameter linear model) and two moons.

Bytes are what the in-memory transport counts: the size of every frame a node's
envelopes encode to, as they would go over TCP (its config reply included). Each run's
curve is the global train loss (each node's model on all nodes' training data, averaged
over the nodes) against the mean bytes a node had sent, at about 100 points. The ratio
is DGD's bytes over CHOCO's to first reach a target loss that both runs reach: 1.05
times the higher of their final losses.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import torch

import peerflow
from peerflow import Config
from peerflow.algorithms import (
    dataset_loss,
    least_squares,
    metropolis_hastings,
    random_connected,
    two_moons,
)
from peerflow.jobs import figure, learning_executors, write_json
from peerflow.transport import MemoryTransport

NODES = 8
TARGET_MARGIN = 1.05


@dataclass(frozen=True)
class Run:
    """One curve: an algorithm with its extra parameters."""

    label: str
    algorithm: str
    extra: dict[str, Any]


RUNS = (Run("DGD (uncompressed)", "dgd", {}),
        Run("CHOCO-SGD top-k 1%", "choco-sgd", {"compress": "top-k:0.01", "gamma": 0.05}))


ITERATIONS = {"least-squares": (300, 2000), "two-moons": (300, 1500)}
"""Each problem's iterations: quick, full."""


def _problem(name: str) -> Any:
    if name == "least-squares":  # features with a mean: the largest local curvature is ~540
        return replace(least_squares(NODES, 0, dim=1000, samples=150), stepsize=0.0015)
    return two_moons(NODES, 0)


def run_curve(task: Any, run: Run, iterations: int) -> dict[str, Any]:
    """Run ``run`` on ``task`` in memory, counting bytes: at about 100 points, the global
    train loss (each node's model on every node's training data, averaged over nodes)
    and the bytes a node had sent, on average."""
    network = metropolis_hastings(random_connected(NODES, seed=1))
    executors = learning_executors(run.algorithm, task, network, 60.0)
    every = max(1, iterations // 100)
    points: dict[int, list[tuple[dict[str, Any], int]]] = {}
    for ex in executors.values():
        ex.on_step = _recorder(ex, points, every)
    config = Config(network, {"iterations": iterations, "stepsize": task.stepsize, **run.extra})
    result = anyio.run(lambda: peerflow.run(config, executors, MemoryTransport(count_bytes=True)))
    if not result.ok:
        raise RuntimeError(f"{run.label} on {task.name}: {result.reason}")
    nodes = list(executors.values())
    steps = sorted(points)
    losses = [np.mean([_global_loss(nodes, x) for x, _ in points[t]]) for t in steps]
    sent = [float(np.mean([b for _, b in points[t]])) for t in steps]
    return {"label": run.label, "algorithm": run.algorithm, "extra": run.extra,
            "iterations": [t + 1 for t in steps], "loss": losses, "bytes_per_node": sent,
            "bytes_per_iteration": sent[-1] / iterations}


def _recorder(executor: Any, points: dict[int, list[Any]], every: int) -> Any:
    def record(t: int, state: Any) -> None:
        if (t + 1) % every == 0:
            x = {name: value.clone() for name, value in state.x.items()}
            points.setdefault(t, []).append((x, executor.sent_bytes()))
    return record


def _global_loss(nodes: list[Any], x: dict[str, Any]) -> float:
    """The mean over nodes of their training loss at parameters ``x``."""
    model = nodes[0].model
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.copy_(x[name])
    return float(np.mean([dataset_loss(model, node.loss, node.train_dataloader)
                          for node in nodes]))


def bytes_to_reach(curve: dict[str, Any], target: float) -> float | None:
    """Mean bytes a node had sent when the mean loss first reached ``target``."""
    for loss, sent in zip(curve["loss"], curve["bytes_per_node"], strict=True):
        if loss <= target:
            return float(sent)
    return None


def compare(problem: str, iterations: int) -> dict[str, Any]:
    """Both runs on ``problem``, the target loss and the bytes ratio to reach it."""
    task = _problem(problem)
    curves = [run_curve(task, run, iterations) for run in RUNS]
    target = TARGET_MARGIN * max(curve["loss"][-1] for curve in curves)
    reached = [bytes_to_reach(curve, target) for curve in curves]
    ratio = reached[0] / reached[1] if None not in reached and reached[1] else None
    return {"problem": problem, "iterations": iterations, "curves": curves,
            "target_loss": target, "bytes_to_target": reached, "ratio": ratio}


def plot(result: dict[str, Any], out: Path) -> Path:
    """Loss against bytes (log-log) and against iterations, side by side."""
    path = out / f"compression_{result['problem']}.png"
    with figure(path, f"{result['problem']}: global train loss against bytes sent per node",
                "bytes sent per node", "global train loss", logx=True) as axes:
        for curve in result["curves"]:
            axes.plot(np.maximum(curve["bytes_per_node"], 1), curve["loss"], lw=1.5,
                      label=curve["label"])
        axes.axhline(result["target_loss"], color="k", ls=":", lw=1, label="target loss")
    return path


def plot_iterations(result: dict[str, Any], out: Path) -> Path:
    """Loss against iterations."""
    path = out / f"compression_{result['problem']}_iterations.png"
    with figure(path, f"{result['problem']}: global train loss per iteration", "iteration",
                "global train loss") as axes:
        for curve in result["curves"]:
            axes.plot(curve["iterations"], curve["loss"], lw=1.5, label=curve["label"])
    return path


def markdown(results: Sequence[dict[str, Any]]) -> str:
    """One row per problem: bytes per iteration of each run, bytes to the target, ratio."""
    lines = ["| problem | iterations | target loss | DGD bytes / node / iteration | "
             "CHOCO top-k 1% bytes / node / iteration | DGD bytes to target | "
             "CHOCO bytes to target | ratio |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        dgd, choco = r["curves"]
        reached = [f"{b:,.0f}" if b is not None else "not reached" for b in r["bytes_to_target"]]
        ratio = f"{r['ratio']:.1f}x" if r["ratio"] else "-"
        lines.append(f"| {r['problem']} | {r['iterations']} | {r['target_loss']:.4g} | "
                     f"{dgd['bytes_per_iteration']:,.0f} | {choco['bytes_per_iteration']:,.0f} | "
                     f"{reached[0]} | {reached[1]} | {ratio} |")
    return "\n".join(lines)


def measure(out: Path, quick: bool) -> dict[str, Any]:
    """Both problems; plots into ``out``; the results with their markdown table."""
    results = [compare(problem, ITERATIONS[problem][0 if quick else 1])
               for problem in ITERATIONS]
    for result in results:
        plot(result, out)
        plot_iterations(result, out)
    return {"results": results, "markdown": markdown(results)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compression",
                                     description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results = measure(args.out, args.quick)
    write_json(args.out / "compression.json", results)
    print(results["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
