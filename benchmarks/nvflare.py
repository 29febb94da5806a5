"""NVFlare side by side: NVFlare's consensus and two-moons jobs next to peerflow's.

peerflow runs both jobs here, in this run: consensus on 12 nodes for 50
iterations (in memory and over loopback TCP) and gradient tracking on two moons
(6 nodes, 1000 iterations, step 0.01). NVFlare is never a dependency: given
``--nvflare-python PATH`` (a Python with NVFlare installed, in its own
environment), its jobs are generated from its examples' layout into OUT/nvflare/
and run in its simulator on this machine, in this run; otherwise the figures
recorded below stand in, and the report says so. Wall times are whole jobs,
start-up included, on both sides.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import peerflow
from peerflow.actors import Config
from peerflow.algorithms import ConsensusExecutor, metropolis_hastings, random_connected

RECORDED: dict[str, dict[str, Any]] = {
    "consensus": {"job": "consensus, 12 nodes, 50 iterations", "wall_s": (47.0, 53.0),
                  "startup_s": (30.5, 32.9), "iteration_ms": 251.0, "peak_gb": 4.7},
    "two-moons": {"job": "gradient tracking on two moons, 6 nodes, 1000 iterations",
                  "wall_s": (372.0, 372.0), "startup_s": (23.0, 23.0), "iteration_ms": 340.0,
                  "peak_gb": 4.1},
}
"""NVFlare 2.9.0 in its simulator on a 2-core, 24 GiB machine (CPU only), 2026-11-23: the jobs
below, run by ``peerflow bench --only nvflare --nvflare-python PATH``."""
NVFLARE_TIMEOUT_S = 1800.0

_COMMON = '''import sys
from nvflare.app_opt.p2p.controllers import DistOptController
from nvflare.app_opt.p2p.types import Config
from nvflare.app_opt.p2p.utils.config_generator import generate_random_network
from nvflare.job_config.api import FedJob

NODES, ITERATIONS, WORKSPACE, HERE = {nodes}, {iterations}, sys.argv[1], sys.argv[2]
network, _ = generate_random_network(num_clients=NODES, seed=42)
job = FedJob(name="{name}")
job.to_server(DistOptController(config=Config(network=network, extra={extra})))
job.to(HERE + "/peerflow_custom.py", "server")  # 2.9.0 refuses P2P components without a custom
'''
_CONSENSUS = _COMMON + '''from nvflare.app_opt.p2p.executors import ConsensusExecutor
for i in range(NODES):
    job.to(ConsensusExecutor(), f"site-{{i + 1}}")
    job.to(HERE + "/peerflow_custom.py", f"site-{{i + 1}}")
job.simulator_run(WORKSPACE, n_clients=NODES, threads=NODES)
'''
_TWO_MOONS = _COMMON + '''sys.path.insert(0, HERE)
from peerflow_custom import TwoMoonsGT
for i in range(NODES):
    job.to(TwoMoonsGT(data_seed=i), f"site-{{i + 1}}")
    job.to(HERE + "/peerflow_custom.py", f"site-{{i + 1}}")
job.simulator_run(WORKSPACE, n_clients=NODES, threads=NODES)
'''
_CUSTOM = '''"""Shipped to every app's custom folder: NVFlare's two-moons example executor."""
import torch
from nvflare.app_opt.p2p.executors import GTExecutor
from sklearn.datasets import make_moons
from torch.utils.data import DataLoader, TensorDataset


class TwoMoonsGT(GTExecutor):
    def __init__(self, data_seed: int = 0):
        model = torch.nn.Sequential(torch.nn.Linear(2, 32), torch.nn.ReLU(),
                                    torch.nn.Linear(32, 32), torch.nn.ReLU(),
                                    torch.nn.Linear(32, 2))
        x, y = make_moons(n_samples=400, noise=0.1, random_state=data_seed)
        x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
        train = DataLoader(TensorDataset(x[:320], y[:320]), batch_size=32, shuffle=True)
        test = DataLoader(TensorDataset(x[320:], y[320:]), batch_size=80)
        super().__init__(model=model, loss=torch.nn.CrossEntropyLoss(),
                         train_dataloader=train, test_dataloader=test)
'''
SCRIPTS = {"consensus": (_CONSENSUS, 12, 50, '{"iterations": ITERATIONS}'),
           "two-moons": (_TWO_MOONS, 6, 1000, '{"iterations": ITERATIONS, "stepsize": 0.01}')}


def peerflow_consensus(transport: str, nodes: int = 12, iterations: int = 50) -> dict[str, Any]:
    """NVFlare's consensus job on peerflow: whole-job wall time and time per iteration."""
    network = metropolis_hastings(random_connected(nodes, seed=42))
    executors = [ConsensusExecutor(sync_timeout=30.0) for _ in range(nodes)]
    started = time.perf_counter()
    result = peerflow.simulate(Config(network, {"iterations": iterations}), executors, transport)
    wall = time.perf_counter() - started
    return {"ok": result.ok, "wall_s": wall, "iterations": iterations,
            "iteration_ms": 1e3 * result.timings.get("run", 0.0) / iterations}


def peerflow_two_moons(iterations: int = 1000) -> dict[str, Any] | None:
    """Gradient tracking on two moons through benchmarks.convergence, if it is there."""
    try:
        from . import convergence
    except ImportError:
        return None
    import torch

    from peerflow.algorithms import PROBLEMS

    torch.set_num_threads(1)  # as benchmarks.convergence runs it: six nodes share two cores
    row, _ = convergence.learning_row("gt", PROBLEMS["two-moons"](6, 0),
                                      convergence.GRAPHS["undirected"](), iterations)
    return {"ok": True, "wall_s": row["wall_time"], "iterations": iterations,
            "iteration_ms": 1e3 * row["wall_time"] / iterations,
            "test_accuracy": row.get("test_accuracy")}


def run_nvflare(python: str, job: str, out: Path) -> dict[str, Any]:
    """Generate ``job`` for NVFlare's simulator under ``out`` and run it with ``python``."""
    folder = out / job
    folder.mkdir(parents=True, exist_ok=True)
    template, nodes, iterations, extra = SCRIPTS[job]
    script = folder / "launch.py"
    script.write_text(template.format(nodes=nodes, iterations=iterations, name=job,
                                      extra=extra))
    (folder / "peerflow_custom.py").write_text(_CUSTOM)
    started = time.perf_counter()
    try:
        done = subprocess.run([python, str(script), str(folder / "workspace"), str(folder)],
                              capture_output=True, text=True, timeout=NVFLARE_TIMEOUT_S,
                              cwd=folder, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    wall = time.perf_counter() - started
    (folder / "stderr.txt").write_text(done.stderr)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        return {"ok": False, "error": tail[0][:300]}
    return {"ok": True, "wall_s": wall}


def side_by_side(out: Path, nvflare_python: str | None = None,
                 two_moons_iterations: int = 1000) -> dict[str, Any]:
    """Both jobs on peerflow now, and NVFlare live (with a Python for it) or as recorded.

    A quick run may give two moons fewer iterations; it is then compared per iteration.
    """
    jobs: dict[str, Any] = {}
    for job in RECORDED:
        live = run_nvflare(nvflare_python, job, out / "nvflare") if nvflare_python else None
        peerflow_rows = ({"memory": peerflow_consensus("memory"),
                          "tcp": peerflow_consensus("tcp")} if job == "consensus"
                         else {"memory": peerflow_two_moons(two_moons_iterations)})
        jobs[job] = {"recorded": RECORDED[job], "live": live, "iterations": SCRIPTS[job][2],
                     "peerflow": {k: v for k, v in peerflow_rows.items() if v is not None}}
    return {"nvflare_python": nvflare_python, "jobs": jobs}


def speedup(entry: dict[str, Any], ours: dict[str, Any]) -> tuple[float, str]:
    """NVFlare's time over peerflow's, labelled in-loop: peerflow's ``run`` call inside a running
    interpreter against NVFlare's whole command (or per iteration if peerflow ran fewer)."""
    wall, _ = nvflare_wall(entry)
    if ours["iterations"] == entry["iterations"]:
        return wall / ours["wall_s"], "in-loop run() against NVFlare's whole command"
    per_iteration = entry["recorded"]["iteration_ms"]
    if entry["live"] and entry["live"].get("ok"):
        per_iteration = 1e3 * wall / entry["iterations"]
    return (per_iteration / ours["iteration_ms"],
            f"per iteration ({ours['iterations']} of {entry['iterations']} iterations)")


def nvflare_wall(entry: dict[str, Any]) -> tuple[float, str]:
    """NVFlare's wall time for a job and where it comes from (this run, or recorded)."""
    live = entry["live"]
    if live and live.get("ok"):
        return live["wall_s"], "measured in this run"
    low, high = entry["recorded"]["wall_s"]
    why = f"recorded ({low:g}–{high:g} s, NVFlare 2.9.0, 2026-11-23)"
    if live:
        why += f"; the live run failed: {live['error']}"
    return (low + high) / 2, why


def markdown(results: dict[str, Any]) -> str:
    """One row per job and peerflow transport: wall times and NVFlare / peerflow."""
    lines = ["| job | NVFlare wall s | source | peerflow transport | peerflow wall s "
             "| peerflow ms / iteration | NVFlare / peerflow |",
             "|---|---|---|---|---|---|---|"]
    for entry in results["jobs"].values():
        wall, source = nvflare_wall(entry)
        for transport, ours in entry["peerflow"].items():
            ratio, basis = speedup(entry, ours)
            lines.append(f"| {entry['recorded']['job']} | {wall:.3g} | {source} | {transport} "
                         f"| {ours['wall_s']:.3g} | {ours['iteration_ms']:.3g} "
                         f"| {ratio:.0f}x ({basis}) |")
    return "\n".join(lines)
