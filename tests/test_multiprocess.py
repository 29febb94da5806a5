"""Runs across processes: one per node plus a controller, on loopback.

Every child process is killed in a ``finally``: no test leaves one running. The
processes share a join secret through ``PEERFLOW_SECRET``, as ``--processes`` does.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

import peerflow
from peerflow.actors._cluster import query_status
from peerflow.cli import main
from peerflow.jobs import build_network, consensus_executors
from peerflow.transport import create_transport

ENTRY = "import sys; from peerflow.cli import main; sys.exit(main())"
TRAINER = Path(__file__).parents[1] / "examples" / "trainer.py"
SECRET = "multiprocess-test-secret"
SYNC_TIMEOUT = 3.0
MARGIN = 5.0
pytestmark = pytest.mark.timeout(200)  # generous: a loaded machine starts processes slowly


def peerflow_process(*args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-c", ENTRY, *args], stdout=out, stderr=out,
                                stdin=subprocess.DEVNULL,
                                env={**os.environ, "PEERFLOW_SECRET": SECRET})


def kill_all(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_simulate_with_processes_writes_the_simulators_summary(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-c", ENTRY, "simulate", "consensus", "--processes",
                           "-n", "3", "-t", "ring", "-i", "40", "--seed", "4", "--out", str(out)],
                          capture_output=True, timeout=80, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["algorithm"] == "consensus"
    network = build_network("ring", 3, 4, None)
    executors = consensus_executors(network, 4, 10.0)
    assert peerflow.simulate(peerflow.Config(network, {"iterations": 40}), executors).ok
    for node, executor in executors.items():
        assert summary["results"][node]["value_history"] == executor.value_history
    assert summary["metrics"]["matrix_form_error"] < 1e-12


def status_of(address: str) -> dict:
    transport = create_transport("tcp://127.0.0.1:0", name="admin", dial_only=True,
                                 secret=SECRET)
    return anyio.run(lambda: query_status(address, transport, 5.0))  # type: ignore[arg-type]


def wait_running(address: str, children: list[subprocess.Popen[bytes]]) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert all(child.poll() is None for child in children), "a process ended early"
        try:
            report = status_of(address)
        except Exception:  # not up yet
            report = {}
        if report.get("state") == "running" and all(
                (n.get("iteration") or 0) > 5 for n in report["nodes"]):
            return report
        time.sleep(0.2)
    raise AssertionError("the run did not start")


def start_job(tmp_path: Path, job: str, nodes: dict[str, list[str]],
              children: list[subprocess.Popen[bytes]]) -> str:
    """Start a controller for ``job`` (writing to tmp_path/out) and a process per node
    (with its extra arguments), appended to ``children``; return the controller's address."""
    job_file = tmp_path / "job.toml"
    job_file.write_text(job)
    address = f"127.0.0.1:{free_port()}"
    children.append(peerflow_process("controller", "--job", str(job_file), "--listen", address,
                                     "--out", str(tmp_path / "out"),
                                     log=tmp_path / "controller.log"))
    for name, options in nodes.items():
        children.append(peerflow_process("node", "--name", name, "--controller", address,
                                         *options, log=tmp_path / f"{name}.log"))
    return address


def test_killing_a_node_aborts_every_process_naming_it(tmp_path: Path) -> None:
    job = (f'algorithm = "consensus"\niterations = 100000000\nseed = 0\n'
           f"sync_timeout = {SYNC_TIMEOUT}\n[network]\ntopology = \"ring\"\nnodes = 3\n")
    children: list[subprocess.Popen[bytes]] = []
    try:
        address = start_job(tmp_path, job, {f"site-{i}": [] for i in (1, 2, 3)}, children)
        report = wait_running(address, children)
        assert {c["peer"] for c in report["nodes"][0]["connections"]} >= {"controller"}
        children[2].send_signal(signal.SIGKILL)  # site-2
        killed = time.monotonic()
        for child in children:
            child.wait(timeout=SYNC_TIMEOUT + MARGIN + 10)
        elapsed = time.monotonic() - killed
    finally:
        kill_all(children)
    assert elapsed < SYNC_TIMEOUT + MARGIN
    assert [c.returncode for c in children] == [1, 1, -signal.SIGKILL, 1]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["status"] == "aborted" and summary["node"] == "site-2"
    assert "lost node 'site-2'" in summary["reason"]
    assert "site-2" in (tmp_path / "controller.log").read_text()
    # what the two nodes still there had reached is kept, and drawn
    assert set(summary["results"]) == set(summary["iterations_reached"]) == {"site-1", "site-3"}
    for node in ("site-1", "site-3"):
        assert len(summary["results"][node]["value_history"]) > summary["iterations_reached"][
            node] > 0
    assert (tmp_path / "out" / "consensus.png").exists()


def learning_job(topology: str, nodes: int) -> str:
    """A short GT job on two moons (60 iterations: six epochs and a bit)."""
    return (f'algorithm = "gt"\nproblem = "two-moons"\niterations = 60\nseed = 2\n'
            f'sync_timeout = 20.0\n\n[network]\ntopology = "{topology}"\nnodes = {nodes}\n')


def run_job(tmp_path: Path, job: str, nodes: dict[str, list[str]]) -> dict[str, Any]:
    """Run a job to its end across processes; every process must exit 0. Its summary."""
    children: list[subprocess.Popen[bytes]] = []
    try:
        start_job(tmp_path, job, nodes, children)
        for child in children:
            child.wait(timeout=150)
    finally:
        kill_all(children)
    logs = {log.name: log.read_text()[-1500:] for log in tmp_path.glob("*.log")}
    assert [child.returncode for child in children] == [0] * len(children), logs
    return dict(json.loads((tmp_path / "out" / "summary.json").read_text()))


def simulated(tmp_path: Path, *args: str) -> dict[str, Any]:
    """``peerflow simulate ARGS`` in this process; its summary."""
    out = tmp_path / "simulated"
    assert main(["simulate", *args, "--out", str(out)]) == 0
    return dict(json.loads((out / "summary.json").read_text()))


def untimed(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` but the bytes sent: each transport frames them its own way."""
    return {k: v for k, v in fields.items() if not k.startswith("bytes_")}


def assert_same_report(tmp_path: Path, got: dict[str, Any], expected: dict[str, Any]) -> None:
    """The same metrics, config, node results (losses, not their times) and plots."""
    assert got["status"] == "completed" and got["algorithm"] == expected["algorithm"]
    assert untimed(got["metrics"]) == untimed(expected["metrics"])
    assert got["config"] == expected["config"]
    for node, result in expected["results"].items():
        for key, value in result.items():
            mine = got["results"][node][key]
            if key.endswith("_loss_sequence"):
                assert mine["loss"] == value["loss"], (node, key)
                assert mine["iteration"] == value["iteration"], (node, key)
            elif not key.startswith("bytes_"):
                assert mine == value, (node, key)
    for plot in ("train_loss.png", "test_loss.png"):
        assert (tmp_path / "out" / plot).read_bytes() == (tmp_path / "simulated" / plot
                                                          ).read_bytes()


def test_a_learning_job_across_processes_writes_the_simulators_report(tmp_path: Path) -> None:
    summary = run_job(tmp_path, learning_job("ring", 3), {f"site-{i}": [] for i in (1, 2, 3)})
    expected = simulated(tmp_path, "gt", "-n", "3", "-t", "ring", "-i", "60", "--seed", "2")
    assert summary["config"]["extra"] == {"iterations": 60, "stepsize": 0.01}
    # start, 5 epochs, end
    assert summary["results"]["site-1"]["train_loss_sequence"]["iteration"] == [
        0, 10, 20, 30, 40, 50, 60]
    assert_same_report(tmp_path, summary, expected)


def test_a_node_whose_agent_process_computes_its_steps_gives_the_same_report(
        tmp_path: Path) -> None:
    agent = ["--agent-command", f"{shlex.quote(sys.executable)} {shlex.quote(str(TRAINER))}"]
    summary = run_job(tmp_path, learning_job("path", 2), {"site-1": agent, "site-2": []})
    expected = simulated(tmp_path, "gt", "-n", "2", "-t", "path", "-i", "60", "--seed", "2")
    assert_same_report(tmp_path, summary, expected)
    assert "test_accuracy" in summary["results"]["site-1"]  # from the agent, not the node
    assert "test_accuracy" not in summary["results"]["site-2"]


def test_a_node_that_cannot_build_its_executor_ends_the_run_at_once_naming_it(
        tmp_path: Path) -> None:
    job = 'algorithm = "consensus"\niterations = 5\n[network]\ntopology = "ring"\nnodes = 2\n'
    children: list[subprocess.Popen[bytes]] = []
    try:  # site-2 never comes: the controller must not wait for it
        start_job(tmp_path, job, {"site-1": ["--agent-command", "true"]}, children)
        for child in children:
            child.wait(timeout=30)
    finally:
        kill_all(children)
    assert [child.returncode for child in children] == [1, 2]
    why = "node 'site-1': --agent-command given, but this job's ConsensusExecutor hosts no agent"
    assert (tmp_path / "site-1.log").read_text().splitlines() == [f"peerflow: error: {why}"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["status"] == "aborted"
    assert summary["reason"] == f"node 'site-1' cannot join: {why}"
