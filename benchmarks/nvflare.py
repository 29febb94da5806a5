"""NVFlare side by side: NVFlare's consensus and two-moons GT jobs and the same jobs on
peerflow, whole command against whole command.

Each job gets a folder OUT/nvflare/JOB/ holding the pinned inputs both sides read (the
network as NVFlare-shaped JSON, consensus's initial values), NVFlare's launch script
and executor, and each command's outputs. Each command is timed from process start to
exit, with the peak RSS of its whole process tree (``_whole``); both are printed. The
results are compared value by value: NVFlare's consensus values (which it saves as
float32) against peerflow's rounded to float32, and the GT losses (float64) exactly.

NVFlare is never a dependency: it runs with ``--nvflare-python PATH``, a Python with
NVFlare installed in its own environment. Without one, or when its run fails, the
figures recorded below stand in, and the report and the screen say so loudly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from peerflow.algorithms import metropolis_hastings, random_connected

from ._whole import run_measured

RECORDED: dict[str, dict[str, Any]] = {
    "consensus": {"wall_s": 62.4, "peak_rss_mb": 4808.0, "iterations": 50},
    "two-moons": {"wall_s": 1354.0, "peak_rss_mb": 4110.0, "iterations": 1000},
    "two-moons-quick": {"wall_s": 284.0, "peak_rss_mb": 3900.0, "iterations": 200},
}
"""NVFlare 2.9.0's whole command (launch script, simulator, results saved) on a 2-core
machine shared with other work (load average 10 to 20), 2026-12-06, by this module:
wall seconds and peak RSS of its process tree (summed over its processes); two moons at
1000 iterations and, for ``--quick``, 200. In the same runs peerflow took 5.1 s and 143 MB
(consensus, memory), 6.7 s (tcp), 69 s and 401 MB (two moons, 1000 iterations), 18.3 s
(200), and matched NVFlare's results: 612 of 612 consensus values, 6000 of 6000 losses."""
RECORDED_WHEN = "NVFlare 2.9.0, 2026-12-06"
NVFLARE_TIMEOUT_S = 3600.0
PEERFLOW_TIMEOUT_S = 900.0
JOBS = {"consensus": (12, 50), "two-moons": (6, 1000)}
"""Nodes and iterations of each job (two moons: NVFlare's example, step size 0.01)."""
STEPSIZE = 0.01

_HEAD = '''import json, sys
from pathlib import Path

from nvflare.app_opt.p2p.controllers import DistOptController
from nvflare.app_opt.p2p.types import Config, Network
from nvflare.job_config.api import FedJob

ITERATIONS = int(sys.argv[1])
network = Network(**json.loads(Path("network.json").read_text()))
'''
LAUNCH = {"consensus": _HEAD + '''import torch
from nvflare.app_opt.p2p.executors import ConsensusExecutor

x0 = json.loads(Path("initial_values.json").read_text())
job = FedJob(name="consensus")
job.to_server(DistOptController(config=Config(network=network,
                                              extra={"iterations": ITERATIONS})))
job.to("byoc.py", "server")
for node in network.nodes:
    job.to(ConsensusExecutor(x0[node.id]), node.id)
    job.to("byoc.py", node.id)
job.simulator_run("workspace", threads=len(network.nodes))
Path("values.json").write_text(json.dumps({
    node.id: torch.load(f"workspace/{node.id}/value_sequence.pt").tolist()
    for node in network.nodes}))
''', "two-moons": _HEAD + '''sys.path.insert(0, ".")
from two_moons_gt import TwoMoonsGT

job = FedJob(name="gt")
job.to_server(DistOptController(config=Config(
    network=network, extra={"iterations": ITERATIONS, "stepsize": STEPSIZE})))
for i, node in enumerate(network.nodes):
    job.to(TwoMoonsGT(data_seed=i), node.id)
    job.to("two_moons_gt.py", node.id)
job.simulator_run("workspace", threads=len(network.nodes))
'''.replace("STEPSIZE", repr(STEPSIZE))}
"""NVFlare's launch scripts, run as ``python launch.py ITERATIONS`` in the job's folder."""
GT_EXECUTOR = '''"""NVFlare's GTExecutor on its two-moons example: site data from make_moons with
random_state=data_seed, test data with random_state=42, a 2-256-256-2 ReLU network with
torch's default initialisation, shuffled batches of 64. torch is seeded first: from
torch 2.13 each process starts from a random seed, which no run could repeat."""
import json

import torch
from sklearn.datasets import make_moons
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nvflare.app_opt.p2p.executors import GTExecutor


def moons(samples, random_state):
    x, y = make_moons(n_samples=samples, noise=0.1, random_state=random_state)
    return TensorDataset(torch.from_numpy(x).float(), torch.from_numpy(y).long())


class TwoMoonsGT(GTExecutor):
    def __init__(self, data_seed: int = 0):
        self._data_seed = data_seed  # FedJob reads constructor arguments back from attributes
        torch.manual_seed(data_seed)
        super().__init__(
            model=nn.Sequential(nn.Linear(2, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                                nn.Linear(256, 2)),
            loss=nn.CrossEntropyLoss(),
            train_dataloader=DataLoader(moons(128, data_seed), batch_size=64, shuffle=True),
            test_dataloader=DataLoader(moons(20, 42), batch_size=20))

    def _post_algorithm_run(self, *args, **kwargs):
        super()._post_algorithm_run(*args, **kwargs)  # NVFlare's *_loss_sequence.pt (float32)
        with open("losses.json", "w") as f:
            json.dump({"train": self.train_loss_sequence, "test": self.test_loss_sequence}, f)
'''
"""The two-moons executor, shipped into every site's custom folder."""
BYOC = '''"""Shipped as custom code: NVFlare 2.9.0 builds the components of a job without
custom code only from its default allow-list, which lacks the P2P classes."""
'''


def prepare(job: str, folder: Path, seed: int = 42) -> list[str]:
    """Write the job's pinned inputs and NVFlare's scripts into ``folder``; peerflow's
    options that read the same inputs."""
    nodes, _ = JOBS[job]
    folder.mkdir(parents=True, exist_ok=True)
    network = metropolis_hastings(random_connected(nodes, seed=seed))
    (folder / "network.json").write_text(json.dumps(network.to_dict(), indent=1))
    (folder / "launch.py").write_text(LAUNCH[job])
    if job == "two-moons":
        (folder / "two_moons_gt.py").write_text(GT_EXECUTOR)
        return ["gt", "--problem", "nvflare-two-moons", "--stepsize", str(STEPSIZE)]
    (folder / "byoc.py").write_text(BYOC)
    x0 = np.random.default_rng(seed).uniform(size=nodes)
    (folder / "initial_values.json").write_text(json.dumps(dict(zip(
        network.node_ids, x0.tolist(), strict=True))))
    return ["consensus", "--initial-values", str(folder / "initial_values.json")]


def peerflow_run(job: str, folder: Path, options: list[str], iterations: int,
                 transport: str) -> dict[str, Any]:
    """``peerflow simulate`` on the pinned inputs, measured as a whole command."""
    out = folder / f"peerflow-{transport}"
    command = [str(Path(sys.executable).parent / "peerflow"), "simulate", *options,
               "--network", str(folder / "network.json"), "--iterations", str(iterations),
               "--transport", transport, "--out", str(out), "--force"]
    result = run_measured(command, out, PEERFLOW_TIMEOUT_S)
    if result["ok"]:
        summary = json.loads((out / "summary.json").read_text())
        result["in_loop_s"] = summary["timings"].get("run")
        result["summary"] = str(out / "summary.json")
    return result


def nvflare_run(python: str, job: str, folder: Path, iterations: int) -> dict[str, Any]:
    """NVFlare's launch script with ``python``, measured as a whole command."""
    result = run_measured([python, "launch.py", str(iterations)], folder, NVFLARE_TIMEOUT_S)
    if not result.get("ok") and "error" not in result:
        lines = (folder / "stderr.txt").read_text(errors="replace").strip().splitlines()
        result["error"] = (lines[-1:] or [f"exit code {result['exit_code']}"])[0][:300]
    return result


def agreement(job: str, folder: Path, summary: Path) -> dict[str, Any]:
    """How far peerflow's results are from NVFlare's, value by value."""
    ours = json.loads(summary.read_text())["results"]
    if job == "consensus":
        theirs = json.loads((folder / "values.json").read_text())
        pairs = [(np.float32(a), np.float32(b)) for node, values in theirs.items()
                 for a, b in zip(ours[node]["value_history"], values, strict=True)]
        basis = "values, peerflow's rounded to float32 as NVFlare saves them"
    else:
        pairs = []
        for node in ours:
            recorded = json.loads((folder / "workspace" / node / "losses.json").read_text())
            for kind in ("train", "test"):
                mine = ours[node][f"{kind}_loss_sequence"]["loss"]
                pairs += [(a, b[1]) for a, b in zip(mine, recorded[kind], strict=False)]
        basis = "train and test losses where both record them (float64)"
    diffs = [abs(float(a) - float(b)) for a, b in pairs]
    return {"compared": len(pairs), "equal": sum(d == 0 for d in diffs),
            "max_abs_diff": max(diffs, default=float("nan")), "basis": basis}


def side_by_side(out: Path, nvflare_python: str | None = None,
                 two_moons_iterations: int = 1000, only: tuple[str, ...] = tuple(JOBS)
                 ) -> dict[str, Any]:
    """The jobs (all, or ``only`` these), both sides, on the same inputs; NVFlare as
    recorded without a Python for it or when its run fails (said on stderr)."""
    jobs: dict[str, Any] = {}
    for job in only:
        nodes, iterations = JOBS[job]
        iterations = two_moons_iterations if job == "two-moons" else iterations
        folder = (out / "nvflare" / job).resolve()  # the commands run inside it
        options = prepare(job, folder)
        live = nvflare_run(nvflare_python, job, folder, iterations) if nvflare_python else None
        transports = ("memory", "tcp") if job == "consensus" else ("memory",)
        ours = {t: peerflow_run(job, folder, options, iterations, t) for t in transports}
        entry = {"nodes": nodes, "iterations": iterations, "live": live, "peerflow": ours,
                 "recorded": recorded(job, iterations), "folder": str(folder)}
        if live and live["ok"] and ours["memory"]["ok"]:
            entry["agreement"] = agreement(job, folder, Path(ours["memory"]["summary"]))
        jobs[job] = entry
        announce(job, entry)
    return {"nvflare_python": nvflare_python, "jobs": jobs}


def recorded(job: str, iterations: int) -> dict[str, Any]:
    """NVFlare's recorded figures for ``job`` at ``iterations``, or the job's usual run
    (then ``ratios`` says n/a: the two ran different numbers of iterations)."""
    runs = [run for name, run in RECORDED.items() if name.startswith(job)]
    return next((run for run in runs if run["iterations"] == iterations), runs[0])


def nvflare_figures(entry: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """NVFlare's wall time and peak RSS for a job, and where they come from."""
    live = entry["live"]
    if live and live["ok"]:
        return live, "measured in this run"
    why = f"RECORDED ({RECORDED_WHEN}), not measured in this run"
    if live:
        why += f": the live run failed ({live['error']})"
    elif live is None:
        why += ": no --nvflare-python"
    return entry["recorded"], why


def ratios(entry: dict[str, Any], ours: dict[str, Any]) -> tuple[str, str]:
    """NVFlare / peerflow for wall time and peak RSS, whole command against whole command;
    none when the two ran different numbers of iterations."""
    theirs, _ = nvflare_figures(entry)
    if not ours["ok"] or theirs.get("iterations", entry["iterations"]) != entry["iterations"]:
        return "n/a", "n/a"
    return (f"{theirs['wall_s'] / ours['wall_s']:.0f}x",
            f"{theirs['peak_rss_mb'] / ours['peak_rss_mb']:.0f}x")


def announce(job: str, entry: dict[str, Any]) -> None:
    """Say on stderr what was run, with both commands, and loudly when NVFlare's figures
    are recorded ones."""
    theirs, source = nvflare_figures(entry)
    if entry["live"] is None or not entry["live"]["ok"]:
        print(f"\n!!! peerflow bench: NVFlare's {job} job: its figures are {source}. "
              "Pass --nvflare-python PATH (a Python with nvflare installed) to measure it "
              "here.\n", file=sys.stderr)
    if entry["live"]:
        print(f"NVFlare  ({job}): {entry['live']['command']}   [in {entry['folder']}]",
              file=sys.stderr)
    for transport, ours in entry["peerflow"].items():
        print(f"peerflow ({job}, {transport}): {ours['command']}", file=sys.stderr)


def markdown(results: dict[str, Any]) -> str:
    """One row per job and peerflow transport: both whole commands, side by side."""
    lines = ["Whole command against whole command: each timed from process start to exit, "
             "with the peak RSS of its whole process tree, on the same network file, data "
             "and seeds (the commands are below). peerflow's in-loop time (its `run` phase "
             "alone, inside the running process) is beside it, labelled.", "",
             "| job | NVFlare wall s | NVFlare peak MB | source | peerflow transport "
             "| peerflow wall s | peerflow peak MB | NVFlare / peerflow, wall | "
             "NVFlare / peerflow, memory | peerflow in-loop s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    commands = []
    for job, entry in results["jobs"].items():
        theirs, source = nvflare_figures(entry)
        name = f"{job}, {entry['nodes']} nodes, {entry['iterations']} iterations"
        for transport, ours in entry["peerflow"].items():
            wall, memory = ratios(entry, ours)
            lines.append(f"| {name} | {theirs['wall_s']:.3g} | {theirs['peak_rss_mb']:.0f} "
                         f"| {source} | {transport} | {ours.get('wall_s', float('nan')):.3g} "
                         f"| {ours.get('peak_rss_mb', float('nan')):.0f} | {wall} | {memory} "
                         f"| {ours.get('in_loop_s') or float('nan'):.3g} |")
            commands.append(f"- peerflow ({job}, {transport}): `{ours['command']}`")
        if entry["live"]:
            commands.append(f"- NVFlare ({job}), in `{entry['folder']}`: "
                            f"`{entry['live']['command']}`")
        if "agreement" in entry:
            a = entry["agreement"]
            commands.append(f"- {job}: {a['equal']} of {a['compared']} {a['basis']} equal "
                            f"to NVFlare's; largest difference {a['max_abs_diff']:.3g}")
    return "\n".join([*lines, "", *commands])
