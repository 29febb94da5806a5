"""Runs across processes: one per node plus a controller, on loopback.

Every child process is killed in a ``finally``: no test leaves one running.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

import peerflow
from peerflow.actors._cluster import query_status
from peerflow.cli._consensus import consensus_executors
from peerflow.cli._network import build_network
from peerflow.transport import create_transport

ENTRY = "import sys; from peerflow.cli import main; sys.exit(main())"
SYNC_TIMEOUT = 3.0
MARGIN = 5.0
pytestmark = pytest.mark.timeout(90)


def peerflow_process(*args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-c", ENTRY, *args], stdout=out, stderr=out,
                                stdin=subprocess.DEVNULL)


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
    transport = create_transport("tcp://127.0.0.1:0", name="admin", dial_only=True)
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


def test_killing_a_node_aborts_every_process_naming_it(tmp_path: Path) -> None:
    job = tmp_path / "job.toml"
    job.write_text(f'algorithm = "consensus"\niterations = 100000000\nseed = 0\n'
                   f"sync_timeout = {SYNC_TIMEOUT}\n[network]\ntopology = \"ring\"\nnodes = 3\n")
    address = f"127.0.0.1:{free_port()}"
    children: list[subprocess.Popen[bytes]] = []
    try:
        children.append(peerflow_process("controller", "--job", str(job), "--listen", address,
                                         "--out", str(tmp_path / "out"),
                                         log=tmp_path / "controller.log"))
        for i in (1, 2, 3):
            children.append(peerflow_process("node", "--name", f"site-{i}", "--controller",
                                             address, log=tmp_path / f"site-{i}.log"))
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
