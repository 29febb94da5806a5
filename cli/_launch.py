"""``peerflow simulate ... --processes``: one ``peerflow node`` process per node, on this host.

Writes the job to a temporary folder, starts the controller and every node as
child processes on loopback (with a throwaway project CA for ``--transport tls``,
and for plain TCP a fresh join secret they get in their environment, not on
their command lines),
waits for the controller, and kills whatever is still running on the way out,
Ctrl-C included: no orphans.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import typer

from peerflow.transport import Project, provision

from ._distributed import SECRET_ENV
from ._jobs import Job

ENTRY = "import sys; from peerflow.cli import main; sys.exit(main())"
NODE_GRACE = 10.0
STOP_GRACE = 1.0


def run_processes(job: Job, transport: str, out: Path | None) -> int:
    """Run ``job`` across processes; return the controller's exit code."""
    with tempfile.TemporaryDirectory(prefix="peerflow-processes-") as folder:
        tmp = Path(folder)
        job_file = tmp / "job.toml"
        job_file.write_text(job.to_toml(tmp / "network.json"))
        tls = _kits(tmp, job) if transport == "tls" else None
        address = f"127.0.0.1:{_free_port()}"
        children: list[subprocess.Popen[bytes]] = []
        env = {**os.environ, SECRET_ENV: secrets.token_urlsafe(32)}
        try:
            controller = _spawn(children, ["controller", "--job", str(job_file), "--listen",
                                           address, *_opt("--out", out), *_opt("--tls", tls),
                                           "--force"], env)  # the launcher claimed --out
            logs = {node: tmp / f"{node}.log" for node in job.network.node_ids}
            for node, log in logs.items():
                _spawn(children, ["node", "--name", node, "--controller", address,
                                  *_opt("--tls", tls)], env, log)
            code = controller.wait()
            _wait_nodes(children[1:], logs)
            return code
        finally:
            _kill(children)


def _spawn(children: list[subprocess.Popen[bytes]], args: list[str], env: dict[str, str],
           log: Path | None = None) -> subprocess.Popen[bytes]:
    output = None if log is None else log.open("wb")
    try:
        child = subprocess.Popen([sys.executable, "-c", ENTRY, *args], stdout=output,
                                 stderr=output, stdin=subprocess.DEVNULL, env=env)
    finally:
        if output is not None:
            output.close()
    children.append(child)
    return child


def _wait_nodes(nodes: list[subprocess.Popen[bytes]], logs: dict[str, Path]) -> None:
    """Give nodes a moment to exit; show the log tail of any that failed."""
    for (name, log), child in zip(logs.items(), nodes, strict=True):
        try:
            code = child.wait(NODE_GRACE)
        except subprocess.TimeoutExpired:
            code = None
        if code != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            typer.echo(f"node {name!r} exited with {code}: " + " | ".join(tail), err=True)


def _kill(children: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to every child still running (the controller writes its summary), then
    SIGKILL to any still running ``STOP_GRACE`` seconds later."""
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + STOP_GRACE
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _opt(flag: str, value: Path | None) -> list[str]:
    return [] if value is None else [flag, str(value)]


def _kits(tmp: Path, job: Job) -> Path:
    provision(Project("processes", "controller", tuple(job.network.node_ids), ("admin",)),
              tmp / "kits")
    return tmp / "kits"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
