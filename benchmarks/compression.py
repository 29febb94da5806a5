"""Compressed communication: train loss against bytes sent, CHOCO-SGD with top-k 1%
against uncompressed DGD, on least squares (a 1,000-parameter linear model) and two moons.

Bytes are what the in-memory transport counts: the size of every frame a node's
envelopes encode to, as they would go over TCP. Each run's curve is the nodes' mean
train loss (each node's model on its own data) against the mean bytes a node had sent,
at each loss record (every epoch). The ratio is DGD's bytes over CHOCO's to first reach
a target loss that both runs reach: 1.05 times the higher of their final losses.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import numpy as np

import peerflow
from peerflow import Config
from peerflow.algorithms import least_squares, metropolis_hastings, random_connected, two_moons
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
        Run("CHOCO-SGD top-k 1%", "choco-sgd", {"compress": "top-k:0.01", "gamma": 0.02}))


def _problem(name: str, quick: bool) -> tuple[Any, int]:
    if name == "least-squares":
        return least_squares(NODES, 0, dim=1000, samples=150), 300 if quick else 2000
    return two_moons(NODES, 0), 300 if quick else 1500


def run_curve(task: Any, run: Run, iterations: int) -> dict[str, Any]:
    """Run ``run`` on ``task`` in memory, counting bytes; its mean loss and bytes per record."""
    network = metropolis_hastings(random_connected(NODES, seed=1))
    executors = learning_executors(run.algorithm, task, network, 60.0)
    config = Config(network, {"iterations": iterations, "stepsize": task.stepsize, **run.extra})
    result = anyio.run(lambda: peerflow.run(config, executors, MemoryTransport(count_bytes=True)))
    if not result.ok:
        raise RuntimeError(f"{run.label} on {task.name}: {result.reason}")
    length = min(len(ex.train_loss_sequence) for ex in executors.values())
    losses = np.mean([[loss for _, loss in ex.train_loss_sequence[:length]]
                      for ex in executors.values()], axis=0)
    sent = np.mean([ex.bytes_sequence[:length] for ex in executors.values()], axis=0)
    return {"label": run.label, "algorithm": run.algorithm, "extra": run.extra,
            "loss": losses.tolist(), "bytes_per_node": sent.tolist(),
            "bytes_per_iteration": float(sent[-1] / iterations)}


def bytes_to_reach(curve: dict[str, Any], target: float) -> float | None:
    """Mean bytes a node had sent when the mean loss first reached ``target``."""
    for loss, sent in zip(curve["loss"], curve["bytes_per_node"], strict=True):
        if loss <= target:
            return float(sent)
    return None


def compare(problem: str, quick: bool) -> dict[str, Any]:
    """Both runs on ``problem``, the target loss and the bytes ratio to reach it."""
    task, iterations = _problem(problem, quick)
    curves = [run_curve(task, run, iterations) for run in RUNS]
    target = TARGET_MARGIN * max(curve["loss"][-1] for curve in curves)
    reached = [bytes_to_reach(curve, target) for curve in curves]
    ratio = reached[0] / reached[1] if None not in reached and reached[1] else None
    return {"problem": problem, "iterations": iterations, "curves": curves,
            "target_loss": target, "bytes_to_target": reached, "ratio": ratio}


def plot(result: dict[str, Any], out: Path) -> Path:
    """Loss against bytes (log-log) and against iterations, side by side."""
    path = out / f"compression_{result['problem']}.png"
    with figure(path, f"{result['problem']}: mean train loss against bytes sent per node",
                "bytes sent per node", "mean train loss", logx=True, logy=True) as axes:
        for curve in result["curves"]:
            axes.plot(np.maximum(curve["bytes_per_node"], 1), curve["loss"], lw=1.5,
                      label=curve["label"])
        axes.axhline(result["target_loss"], color="k", ls=":", lw=1, label="target loss")
    return path


def plot_iterations(result: dict[str, Any], out: Path) -> Path:
    path = out / f"compression_{result['problem']}_iterations.png"
    with figure(path, f"{result['problem']}: mean train loss per epoch", "epoch",
                "mean train loss", logy=True) as axes:
        for curve in result["curves"]:
            axes.plot(curve["loss"], lw=1.5, label=curve["label"])
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
    results = [compare(problem, quick) for problem in ("least-squares", "two-moons")]
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
