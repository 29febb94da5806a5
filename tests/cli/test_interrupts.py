"""Ctrl-C (SIGINT) and SIGTERM stop a command at once: one line, summary.json, exit 130.

Each test starts ``peerflow`` as a process in a session of its own, waits until it
runs, signals it and checks what it leaves: no process of its session survives.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ENTRY = "import sys; from peerflow.cli import main; sys.exit(main())"
STOP_BOUND = 5.0
"""Seconds a signalled command may take to exit (about 1 s; the suite's machine may be busy)."""
START_BOUND = 40.0
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Command:
    """A ``peerflow`` process in its own session, with its stderr read as it comes."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "TTY_COMPATIBLE": "1", "COLUMNS": "200"}  # progress on a pipe
        self.process = subprocess.Popen([sys.executable, "-c", ENTRY, *args], env=env,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, start_new_session=True)
        self.stderr = b""

    def wait_for(self, pattern: str) -> None:
        """Read stderr until ``pattern`` (a regex) shows in it."""
        assert self.process.stderr is not None
        deadline = time.monotonic() + START_BOUND
        while not re.search(pattern, ANSI.sub("", self.stderr.decode(errors="replace"))):
            assert time.monotonic() < deadline, f"no {pattern!r} in {self.stderr[-500:]!r}"
            assert self.process.poll() is None, f"exited early: {self.stderr[-500:]!r}"
            ready, _, _ = select.select([self.process.stderr], [], [], 0.5)
            if ready:
                self.stderr += os.read(self.process.stderr.fileno(), 65536)

    def stop(self, signum: int) -> tuple[float, str, str]:
        """Send ``signum``; return the seconds to exit, stdout, and the lines on stderr after."""
        seen = len(self.stderr)
        started = time.monotonic()
        self.process.send_signal(signum)
        stdout, rest = self.process.communicate(timeout=60)
        elapsed = time.monotonic() - started
        after = ANSI.sub("", (self.stderr[seen:] + rest).decode(errors="replace"))
        lines = [line.strip() for line in re.split(r"[\r\n]", after) if line.strip()]
        return elapsed, stdout.decode(), "\n".join(line for line in lines
                                                   if not re.match(r"^consensus\b", line))

    def survivors(self) -> list[str]:
        """The live processes of this command's session (its children included)."""
        alive = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == self.process.pid and fields[0] != "Z":
                alive.append(stat.parent.name)
        return alive


@pytest.fixture
def start() -> Iterator[Callable[..., Command]]:
    """Start commands; kill whatever of their sessions is left when the test ends."""
    started: list[Command] = []

    def starting(*args: str) -> Command:
        started.append(Command(*args))
        return started[-1]

    yield starting
    for command in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(command.process.pid, signal.SIGKILL)
        command.process.wait()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_a_simulation_at_once_and_writes_an_interrupted_summary(
    signum: signal.Signals, tmp_path: Path, start: Callable[..., Command]
) -> None:
    out = tmp_path / "out"
    command = start("simulate", "consensus", "--nodes", "50", "--topology", "ring",
                      "--iterations", "1000000", "--out", str(out))
    command.wait_for(r"consensus.*\b[1-9]\d*/1000000")
    elapsed, stdout, stderr = command.stop(signum)
    assert command.process.returncode == 130
    assert stdout == ""
    assert stderr.splitlines() == [stderr] and f"interrupted by {signum.name}" in stderr
    assert elapsed < STOP_BOUND
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["reason"] == (
        f"interrupted by {signum.name}")
    reached = summary["iterations_reached"]
    assert sorted(reached) == sorted(f"site-{i}" for i in range(1, 51))
    assert summary["iteration"] == min(reached.values()) >= 1
    assert f"at iteration {summary['iteration']} of 1000000" in stderr
    for node, result in summary["results"].items():  # what each node reached, kept
        assert len(result["value_history"]) - 1 in (reached[node], reached[node] + 1)
    assert sorted(p.name for p in out.iterdir()) == ["consensus.png", "summary.json"]
    assert command.survivors() == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_a_multi_process_simulation_and_every_process_it_started(
    signum: signal.Signals, tmp_path: Path, start: Callable[..., Command]
) -> None:
    command = start("simulate", "consensus", "--nodes", "3", "--topology", "ring",
                      "--iterations", "1000000", "--processes", "--out", str(tmp_path / "out"))
    command.wait_for(r"controller listening")
    deadline = time.monotonic() + START_BOUND
    while len(command.survivors()) < 5:  # the launcher, the controller and three nodes
        assert time.monotonic() < deadline, "the node processes did not start"
        time.sleep(0.1)
    time.sleep(1.0)
    elapsed, stdout, stderr = command.stop(signum)
    assert command.process.returncode == 130
    assert f"peerflow: interrupted by {signum.name}" in stderr.splitlines()
    assert "Traceback" not in stderr
    assert elapsed < STOP_BOUND
    assert command.survivors() == []


def test_sigterm_stops_a_waiting_controller_in_one_line(
    tmp_path: Path, start: Callable[..., Command]
) -> None:
    job = tmp_path / "job.toml"
    job.write_text('algorithm = "consensus"\niterations = 5\n[network]\nnodes = 3\n')
    command = start("controller", "--job", str(job), "--listen", "127.0.0.1:0")
    command.wait_for(r"controller listening")
    elapsed, _, stderr = command.stop(signal.SIGTERM)
    assert command.process.returncode == 130
    assert stderr.splitlines()[-1] == "peerflow: interrupted by SIGTERM"
    assert "Traceback" not in stderr and elapsed < STOP_BOUND


def test_sigterm_stops_a_node_waiting_for_its_controller_in_one_line(
    start: Callable[..., Command], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEERFLOW_SECRET", "s" * 32)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        silent.settimeout(START_BOUND)
        port = silent.getsockname()[1]
        command = start("node", "--name", "site-1", "--controller", f"127.0.0.1:{port}",
                        "--join-timeout", "60")
        connection, _ = silent.accept()  # the node runs: it dialed
        with connection:
            elapsed, _, stderr = command.stop(signal.SIGTERM)
    assert command.process.returncode == 130
    assert stderr == "peerflow: interrupted by SIGTERM"
    assert elapsed < STOP_BOUND
