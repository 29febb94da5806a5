"""Engines: the batched engine against the actor engine and a hand-written vmap floor.

Gradient tracking on two-moons (an MLP 2-32-32-2, batches of 32, a random graph of
mean degree 4), one torch thread, each measurement in a child process of its own
(``python -m benchmarks.engines --child KIND NODES ITERATIONS``):

- ``per_node_iteration``: run seconds / (nodes x iterations) for the actor engine
  (``peerflow.simulate``), the batched engine (``simulate_batched``) and the floor,
  a hand-written batched GT loop (stacked flat parameters, ``vmap(grad(functional_call))``,
  sparse ``W @ X``) recording the same losses at the same iterations (the start, each
  epoch's end, the last). The aim: batched <= 3x the floor at 1,000 nodes.
- ``largest``: per engine, node counts doubling (from 1,000 batched, 125 on actors)
  until a run of 10 iterations does not complete within a minute (run wall time,
  executors built before the clock starts), capped at ``MAX_NODES``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BUDGET_S = 60.0
BUILD_ALLOWANCE_S = 240.0  # building (not timed) 10,000s of executors and importing torch
MAX_NODES = 65_536
AIM = 3.0
_ROOT = Path(__file__).resolve().parents[1]


def network(nodes: int) -> Any:
    from peerflow.algorithms import metropolis_hastings, random_connected

    return metropolis_hastings(random_connected(nodes, seed=0))


def engine_run(kind: str, nodes: int, iterations: int) -> float:
    """Run seconds of GT on two-moons with the actor or the batched engine."""
    import peerflow
    from peerflow.actors import Config
    from peerflow.algorithms import GTExecutor, simulate_batched, two_moons

    graph, problem = network(nodes), two_moons(nodes)
    executors = {node: GTExecutor(**problem.node_kwargs(i), sync_timeout=600.0)
                 for i, node in enumerate(graph.node_ids)}
    config = Config(graph, {"iterations": iterations, "stepsize": problem.stepsize})
    started = time.perf_counter()
    result = (simulate_batched(config, executors) if kind == "batched"
              else peerflow.simulate(config, executors, config_timeout=600.0))
    if not result.ok:
        raise RuntimeError(f"{kind} run at {nodes} nodes: {result.reason}")
    return time.perf_counter() - started


def floor_run(nodes: int, iterations: int) -> float:
    """Run seconds of the hand-written batched GT loop (same records as the engines)."""
    import numpy as np
    import torch
    from torch.func import functional_call, grad, vmap

    from peerflow.algorithms import sparse_mixing_matrix, two_moons

    problem = two_moons(nodes)
    csr = sparse_mixing_matrix(network(nodes))[0].tocoo()
    w = torch.sparse_coo_tensor(torch.tensor(np.vstack([csr.row, csr.col])),
                                torch.tensor(csr.data, dtype=torch.float32), csr.shape,
                                check_invariants=False).coalesce()
    model, loss = problem.node_model(0), problem.loss()
    names = [name for name, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    sizes = [p.numel() for p in model.parameters()]
    x = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).repeat(nodes, 1)
    inputs = torch.stack([torch.from_numpy(a) for a, _ in problem.train])
    labels = torch.stack([torch.from_numpy(b) for _, b in problem.train])
    test = [torch.from_numpy(a) for a in problem.test]

    def params(flat: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = flat.split(sizes, dim=-1)
        return {n: p.reshape(*flat.shape[:-1], *s) for n, p, s in
                zip(names, parts, shapes, strict=True)}

    def value(p: dict[str, torch.Tensor], a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return loss(functional_call(model, p, (a,)), b)

    gradient, losses = vmap(grad(value)), vmap(value)

    def record(flat: torch.Tensor) -> None:
        with torch.no_grad():
            losses(params(flat), inputs, labels).tolist()
            losses(params(flat), test[0].expand(nodes, -1, -1), test[1].expand(nodes, -1)).tolist()

    batch, samples = 32, inputs.shape[1]
    started = time.perf_counter()
    record(x)
    y, g = torch.zeros_like(x), torch.zeros_like(x)
    for t in range(iterations):
        if t % (samples // batch) == 0:
            order = torch.rand(nodes, samples).argsort(dim=1)
        index = order[:, (t % (samples // batch)) * batch:][:, :batch]
        a = torch.gather(inputs, 1, index[..., None].expand(-1, -1, 2))
        x = w @ x - problem.stepsize * y
        g_new = torch.cat([v.reshape(nodes, -1) for v in
                           gradient(params(x), a, torch.gather(labels, 1, index)).values()], 1)
        y, g = w @ y + g_new - g, g_new
        if (t + 1) % (samples // batch) == 0 or t == iterations - 1:
            record(x)
    return time.perf_counter() - started


def child(kind: str, nodes: int, iterations: int, timeout: float) -> float | None:
    """Run seconds of one measurement in its own process; None if it did not finish."""
    try:
        done = subprocess.run([sys.executable, "-m", "benchmarks.engines", "--child", kind,
                               str(nodes), str(iterations)], capture_output=True, text=True,
                              timeout=timeout, cwd=_ROOT, check=False)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        raise RuntimeError(f"{kind} at {nodes} nodes failed: {done.stderr[-2000:]}")
    return float(json.loads(done.stdout.splitlines()[-1])["seconds"])


def per_node_iteration(counts: tuple[int, ...], iterations: int, actor_max: int
                       ) -> list[dict[str, Any]]:
    """Microseconds per node-iteration of each engine and the floor, by node count."""
    rows = []
    for nodes in counts:
        row: dict[str, Any] = {"nodes": nodes, "iterations": iterations}
        for kind in ("floor", "batched", "actors"):
            if kind == "actors" and nodes > actor_max:
                row[kind] = None  # skipped: minutes per run at this size
                continue
            seconds = child(kind, nodes, iterations, 3600.0)
            row[kind] = None if seconds is None else seconds / (nodes * iterations) * 1e6
        row["batched_over_floor"] = row["batched"] / row["floor"]
        rows.append(row)
    return rows


def largest(kind: str, start: int = 1000, cap: int = MAX_NODES) -> dict[str, Any]:
    """Node counts doubling from ``start`` until 10 iterations take over a minute."""
    tried, nodes = [], start
    while nodes <= cap:
        seconds = child(kind, nodes, 10, BUDGET_S + BUILD_ALLOWANCE_S)
        ok = seconds is not None and seconds <= BUDGET_S
        tried.append({"nodes": nodes, "seconds": seconds, "within_budget": ok})
        if not ok:
            break
        nodes *= 2
    passed = [t["nodes"] for t in tried if t["within_budget"]]
    return {"largest": max(passed, default=None), "capped": tried[-1]["within_budget"],
            "tried": tried}


def measure(quick: bool = False) -> dict[str, Any]:
    """The section's figures: per node-iteration by node count, and the largest runs."""
    counts = (100, 1000) if quick else (100, 1000, 10_000)
    rows = per_node_iteration(counts, 20, actor_max=1000)
    at_1000 = next(row for row in rows if row["nodes"] == 1000)
    cap = 8_000 if quick else MAX_NODES
    return {"rows": rows, "ratio_at_1000": at_1000["batched_over_floor"], "aim": AIM,
            "largest": {kind: largest(kind, start, cap) for kind, start in
                        (("batched", 1000), ("actors", 125))},
            "cap": cap}


def markdown(figures: dict[str, Any]) -> str:
    """The figures as a markdown table and two lines."""
    def us(value: float | None) -> str:
        return "skipped" if value is None else f"{value:.1f}"

    lines = ["| nodes | actor engine (us) | batched engine (us) | vmap floor (us) | "
             "batched / floor |", "|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['nodes']:,} | {us(r['actors'])} | {us(r['batched'])} | {us(r['floor'])} "
              f"| {r['batched_over_floor']:.2f}x |" for r in figures["rows"]]
    ratio, aim = figures["ratio_at_1000"], figures["aim"]
    lines.append(f"\nbatched / floor at 1,000 nodes: {ratio:.2f}x (aim <= {aim:g}x: "
                 f"{'met' if ratio <= aim else 'missed'}).")
    for kind, found in figures["largest"].items():
        cap = f" (the search stops at {figures['cap']:,})" if found["capped"] else ""
        size = "none" if found["largest"] is None else f"{found['largest']:,} nodes"
        lines.append(f"\nlargest {kind} run of 10 iterations within a minute: {size}{cap}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.engines")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "NODES", "ITERATIONS"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    if args.child:
        kind, nodes, iterations = args.child[0], int(args.child[1]), int(args.child[2])
        run = floor_run if kind == "floor" else lambda n, t: engine_run(kind, n, t)
        run(4, 2)  # warm up: torch.func loads modules on its first call (seconds)
        print(json.dumps({"seconds": run(nodes, iterations)}))
        return
    figures = measure(args.quick)
    print(json.dumps(figures, indent=2))
    print(markdown(figures))


if __name__ == "__main__":
    main()
