"""Asynchronous against synchronous: a slow node, and a lossy network.

1. Time to a target loss with one node 5x slower than the rest: every link has
   ``BASE_LATENCY``, the slow node's links (both ways) five times that (emulated,
   controller exempt). Synchronous GT and DGD wait for the slowest link every
   iteration; AD-PSGD and asynchronous gradient-push read the newest values they
   hold, waiting at most one base latency for news. The target is the worst final
   train loss of the four plus ``TARGET_SHARE`` of the way back to the initial loss
   (so that each one reaches it); the figure is each algorithm's seconds to it and the ratio of the
   best synchronous time to each asynchronous one. The mean train loss at a moment
   is the mean over nodes of each node's newest record then.
2. The lossy run: averaging on 6 nodes whose links lose 0.1% of messages for good.
   Synchronous consensus aborts at the first loss; gossip and push-sum complete with
   the true average.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import peerflow
from peerflow.actors import CONTROLLER_NAME, Config
from peerflow.algorithms import (
    ASYNC_LEARNING_EXECUTORS,
    LEARNING_EXECUTORS,
    AsyncPushSumExecutor,
    ConsensusExecutor,
    GossipExecutor,
    dataset_loss,
    least_squares,
    metropolis_hastings,
    ring,
    two_moons,
)
from peerflow.transport import EmulatedTransport, Link, MemoryTransport

BASE_LATENCY = 0.05
SLOW = "site-1"
ALGORITHMS = ("gt", "dgd", "ad-psgd", "async-gradient-push")
ASYNCHRONOUS = ("ad-psgd", "async-gradient-push")
RECORD_EVERY = 2
"""Ticks between two records of a node's parameters."""
TARGET_SHARE = 0.05
"""The target loss: the worst final loss plus this share of the way back to the start."""
PROBLEMS = {"least-squares": least_squares, "two-moons": two_moons}


def slow_links(ids: list[str], factor: float = 5.0) -> EmulatedTransport:
    """Every link ``BASE_LATENCY``; the links to and from ``SLOW`` ``factor`` times that."""
    slow = Link(latency=BASE_LATENCY * factor)
    links = {pair: slow for node in ids if node != SLOW for pair in ((SLOW, node), (node, SLOW))}
    return EmulatedTransport(MemoryTransport(), Link(latency=BASE_LATENCY), links,
                             exempt={CONTROLLER_NAME})


def train(problem: str, algorithm: str, iterations: int) -> list[tuple[float, float]]:
    """One run on a ring of 6 with the slow node: the mean over nodes of the global train
    loss (all nodes' data) of each node's newest parameters, over time."""
    task = PROBLEMS[problem](6, 0)
    network = metropolis_hastings(ring(6))
    executor = {**LEARNING_EXECUTORS, **ASYNC_LEARNING_EXECUTORS}[algorithm]
    pacing = {"max_wait": BASE_LATENCY} if algorithm in ASYNCHRONOUS else {}
    records: dict[str, list[tuple[float, Any]]] = {node: [] for node in network.node_ids}
    started = time.perf_counter()

    def keeper(node: str) -> Callable[[int, Any], None]:
        def keep(t: int, state: Any) -> None:
            if t % RECORD_EVERY == 0:
                records[node].append((time.perf_counter() - started, dict(state.x)))
        return keep

    executors = {node: executor(**task.node_kwargs(i), sync_timeout=30.0,
                                on_step=keeper(node), **pacing)
                 for i, node in enumerate(network.node_ids)}
    config = Config(network, {"iterations": iterations, "stepsize": task.stepsize})
    result = peerflow.simulate(config, executors, slow_links(network.node_ids))
    if not result.ok:
        raise RuntimeError(f"{algorithm} on {problem}: {result.reason}")
    loss = global_loss(task)
    return mean_loss_over_time([[(t, loss(x)) for t, x in node] for node in records.values()])


def global_loss(task: Any) -> Callable[[dict[str, torch.Tensor]], float]:
    """The train loss over every node's data at given parameters."""
    model, criterion = task.node_model(0), task.loss()
    inputs = torch.as_tensor(np.concatenate([x for x, _ in task.train]))
    targets = torch.as_tensor(np.concatenate([y for _, y in task.train]))

    def loss(params: dict[str, torch.Tensor]) -> float:
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(params[name])
        return dataset_loss(model, criterion, [(inputs, targets)])
    return loss


def mean_loss_over_time(records: list[list[tuple[float, float]]]) -> list[tuple[float, float]]:
    """(t, the mean over nodes of each node's newest loss at t) at every record's t."""
    times = sorted({t for node in records for t, _ in node})
    curve = []
    for t in times:
        newest = [next((loss for s, loss in reversed(node) if s <= t), node[0][1])
                  for node in records]
        curve.append((t, float(np.mean(newest))))
    return curve


def time_to(curve: list[tuple[float, float]], target: float) -> float | None:
    """The first moment the curve is at or below ``target`` (None: never)."""
    return next((t for t, loss in curve if loss <= target), None)


def race(problem: str, iterations: int) -> dict[str, Any]:
    """Every algorithm on ``problem``: seconds to the common target, and the ratios."""
    torch.set_num_threads(1)
    curves = {algorithm: train(problem, algorithm, iterations) for algorithm in ALGORITHMS}
    worst = max(curve[-1][1] for curve in curves.values())
    target = worst + TARGET_SHARE * (curves["gt"][0][1] - worst)
    seconds = {algorithm: time_to(curve, target) for algorithm, curve in curves.items()}
    sync = min(s for a, s in seconds.items() if a not in ASYNCHRONOUS and s is not None)
    return {"problem": problem, "iterations": iterations, "target": target,
            "seconds": seconds, "final": {a: c[-1][1] for a, c in curves.items()},
            "speedup": {a: sync / seconds[a] for a in ASYNCHRONOUS if seconds[a]}}


def lossy_average(iterations: int, drop: float = 0.001) -> list[dict[str, Any]]:
    """Averaging on a ring of 6 whose links lose ``drop`` of messages for good."""
    network = metropolis_hastings(ring(6))
    x0 = np.random.default_rng(0).normal(size=6)
    rows = []
    for name, kind in (("consensus (synchronous)", ConsensusExecutor),
                       ("gossip", GossipExecutor), ("async-push-sum", AsyncPushSumExecutor)):
        executors = {n: kind(float(x), sync_timeout=1.0)
                     for n, x in zip(network.node_ids, x0, strict=True)}
        transport = EmulatedTransport(MemoryTransport(), Link(drop=drop, loss="drop"),
                                      exempt={CONTROLLER_NAME}, seed=0)
        result = peerflow.simulate(Config(network, {"iterations": iterations}), executors,
                                   transport)
        final = np.array([ex.current_value for ex in executors.values()])
        rows.append({"algorithm": name, "status": result.status, "reason": result.reason,
                     "lost": transport.stats.dropped, "distance_to_average":
                     float(np.abs(final - x0.mean()).max()) if result.ok else None})
    return rows


def measure(quick: bool) -> dict[str, Any]:
    """Both figures: the races (fewer iterations when quick) and the lossy run."""
    sizes = {"least-squares": 40 if quick else 200, "two-moons": 60 if quick else 300}
    return {"races": [race(problem, n) for problem, n in sizes.items()],
            "lossy": lossy_average(200 if quick else 1000)}


def markdown(figures: dict[str, Any]) -> str:
    """The races and the lossy run as tables."""
    lines = [f"One node 5x slower (links {BASE_LATENCY * 1e3:g} ms, {SLOW}'s "
             f"{5 * BASE_LATENCY * 1e3:g} ms), ring of 6: seconds to the target train loss.",
             "", "| problem | target | " + " | ".join(ALGORITHMS)
             + " | speedup AD-PSGD | speedup gradient-push |", "|---" * (len(ALGORITHMS) + 4)
             + "|"]
    for r in figures["races"]:
        cells = [f"{r['seconds'][a]:.3g}" if r["seconds"][a] else "not reached"
                 for a in ALGORITHMS]
        speedups = [f"{r['speedup'][a]:.2f}x" if a in r["speedup"] else "—" for a in ASYNCHRONOUS]
        lines.append(f"| {r['problem']} | {r['target']:.4g} | " + " | ".join(cells + speedups)
                     + " |")
        finals = [f"{r['final'][a]:.4g}" for a in ALGORITHMS]
        lines.append(f"| final loss after {r['iterations']} iterations (ticks) | | "
                     + " | ".join(finals) + " | | |")
    lines += ["", "Links losing 0.1% of messages for good, ring of 6:", "",
              "| algorithm | status | messages lost | distance to the average |",
              "|---|---|---|---|"]
    for r in figures["lossy"]:
        distance = "—" if r["distance_to_average"] is None else f"{r['distance_to_average']:.2e}"
        lines.append(f"| {r['algorithm']} | {r['status']} | {r['lost']} | {distance} |")
    return "\n".join(lines)
