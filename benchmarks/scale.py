"""Scale and memory: the largest job one process runs within a minute, and memory over time.

Each measurement runs in a child process (``python -m benchmarks.scale --child ...``),
so peak RSS belongs to that job alone:

- ``largest``: node counts in increasing order, 10 consensus iterations each on
  a random graph, until one does not complete within a minute (wall time of
  ``peerflow.run``: spawning, config and run); peak RSS per node beside the
  bare-asyncio floor's, and NVFlare's recorded ~270 MB per node.
- ``flat``: a 10-node ring for 100k iterations (histories bounded, so only the
  framework's own memory counts), RSS sampled as it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import peerflow
from peerflow.actors import Config
from peerflow.algorithms import ConsensusExecutor, metropolis_hastings, random_connected, ring

from . import latency

BUDGET_S = 60.0
NVFLARE_MB_PER_NODE = 270.0  # NVFlare 2.9.0 simulator, consensus at 6 and 12 nodes, 2026-11-23
_ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    """This process's resident memory now, in MB (Linux; peak RSS elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return peak_rss_mb()
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """This process's peak resident memory since start or ``reset_peak()``, in MB."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 2**10
    except (OSError, IndexError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def reset_peak() -> None:
    """Start the peak over from now (Linux), so that imports' transients do not count."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def child(args: list[str], timeout: float) -> dict[str, Any] | None:
    """Run ``python -m benchmarks.scale --child ARGS``; its JSON, or None if it timed out."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("PEERFLOW_STRICT", None)
    try:
        done = subprocess.run([sys.executable, "-m", f"{__package__}.scale", "--child", *args],
                              capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=_ROOT, check=False)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        return {"ok": False, "reason": done.stderr.strip().splitlines()[-1:] or ["crashed"]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def largest(counts: list[int], iterations: int = 10) -> dict[str, Any]:
    """Try each node count in turn; stop at the first that misses the minute."""
    rows: list[dict[str, Any]] = []
    for n in counts:
        row = child(["job", str(n), str(iterations)], timeout=BUDGET_S + 60)
        row = row or {"nodes": n, "ok": False, "reason": f"killed after {BUDGET_S + 60:g}s"}
        row.setdefault("nodes", n)
        row["within_budget"] = bool(row.get("ok")) and row.get("run_s", math.inf) <= BUDGET_S
        rows.append(row)
        if not row["within_budget"]:
            break
    done = [r for r in rows if r["within_budget"]]
    best = done[-1] if done else None
    floor = child(["floor", str(best["nodes"]), str(iterations)], timeout=BUDGET_S + 60) \
        if best else None
    return {"budget_s": BUDGET_S, "iterations": iterations, "rows": rows,
            "largest": best["nodes"] if best else None,
            "mb_per_node": best["mb_per_node"] if best else None,
            "floor_mb_per_node": floor["mb_per_node"] if floor else None,
            "nvflare_mb_per_node": NVFLARE_MB_PER_NODE}


def flat(iterations: int) -> dict[str, Any]:
    """RSS of a 10-node ring over ``iterations`` iterations, sampled as it runs."""
    result = child(["flat", str(iterations)], timeout=600) or {"ok": False, "samples": []}
    samples = result.get("samples", [])
    if len(samples) >= 2:
        start = next(s for s in samples if s[0] >= iterations // 10)
        result["growth_mb"] = samples[-1][1] - start[1]
        result["growth_kb_per_1k_iterations"] = (
            1024 * result["growth_mb"] / max(1, (samples[-1][0] - start[0]) / 1000))
    return result


# -- the child side --------------------------------------------------------------------------
def _job(n: int, iterations: int, side: str) -> dict[str, Any]:
    reset_peak()
    base = rss_mb()
    started = time.perf_counter()
    network = metropolis_hastings(random_connected(n, seed=0))
    built = time.perf_counter()
    case = latency.Case(f"random N={n}", network, iterations, loop=latency.default_loop())
    stamps = latency.time_floor(case) if side == "floor" else latency.time_peerflow(case)
    ended = time.perf_counter()
    return {"nodes": n, "ok": True, "messages": case.messages, "build_s": built - started,
            "run_s": ended - built, "iteration_s": latency.steady(stamps)["mean"],
            "base_mb": base, "peak_mb": peak_rss_mb(),
            "mb_per_node": (peak_rss_mb() - base) / n}


def _flat(iterations: int) -> dict[str, Any]:
    network = metropolis_hastings(ring(10))
    executors = {node: ConsensusExecutor(float(i)) for i, node in enumerate(network.node_ids)}
    for executor in executors.values():
        executor.value_history = latency.LastOnly(executor.value_history)
    samples: list[tuple[int, float]] = []

    def sample(progress: Any) -> None:
        done = min((i or 0) for i in progress.values())
        samples.append((done, rss_mb()))

    config = Config(network, {"iterations": iterations})
    result = latency.run_on(latency.default_loop(), lambda: peerflow.run(
        config, executors, on_progress=sample, progress_interval=0.1))
    return {"ok": result.ok, "iterations": iterations, "samples": samples,
            "wall_s": result.wall_time}


def main(argv: list[str] | None = None) -> None:
    """The child entry point: ``--child job|floor N ITERATIONS`` or ``--child flat ITERATIONS``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale")
    parser.add_argument("--child", nargs="+", required=True)
    what, *numbers = parser.parse_args(argv).child
    values = [int(x) for x in numbers]
    result = _flat(*values) if what == "flat" else _job(*values, side=what)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
