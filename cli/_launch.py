"""``peerflow simulate ... --processes``: one ``peerflow node`` process per node, on this host.

Writes the job to a temporary folder, starts the controller and every node as
child processes on loopback (with a throwaway project CA for ``--transport tls``,
and for plain TCP a fresh join secret they get in their environment, not on
their command lines),
waits for the controller, and stops whatever is still running on the way out
(``peerflow.agents.stop_all``: terminate, then kill), Ctrl-C included: no orphans.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import typer
from anyio.abc import Process

from peerflow.agents import exit_reason, start, stop_all, wait_exit
from peerflow.transport import Project, provision

from ._interrupt import run_async
from ._jobs import Job
from ._secret import SECRET_ENV

ENTRY = "import sys; from peerflow.cli import main; sys.exit(main())"
NODE_GRACE = 10.0
STOP_GRACE = 1.0


def run_processes(job: Job, transport: str, out: Path | None,
                  node_options: Sequence[str] = (), controller_options: Sequence[str] = ()
                  ) -> int:
    """Run ``job`` across processes (each node with ``node_options``, e.g. its agent
    command; the controller with ``controller_options``) over ``transport`` ("memory"
    means tcp); return the controller's exit code.

    Raises:
        Interrupted: SIGINT or SIGTERM stopped it (every child process is stopped first).
    """
    transport = network_transport(transport)
    with tempfile.TemporaryDirectory(prefix="peerflow-processes-") as folder:
        return run_async(lambda: _run_processes(job, transport, out, Path(folder),
                                                list(node_options), list(controller_options)))


async def _run_processes(job: Job, transport: str, out: Path | None, tmp: Path,
                         node_options: list[str], controller_options: list[str]) -> int:
    job_file = tmp / "job.toml"
    job_file.write_text(job.to_toml(tmp / "network.json"))
    tls = _kits(tmp, job) if transport == "tls" else None
    address = f"127.0.0.1:{_free_port()}"
    children: list[Process] = []
    env = {**os.environ, SECRET_ENV: secrets.token_urlsafe(32)}
    try:
        controller = await _spawn(children, ["controller", "--job", str(job_file), "--listen",
                                             address, *_opt("--out", out), *_opt("--tls", tls),
                                             *controller_options, "--force"],
                                env)  # the launcher claimed --out
        logs = {node: tmp / f"{node}.log" for node in job.network.node_ids}
        for node, log in logs.items():
            await _spawn(children, ["node", "--name", node, "--controller", address,
                                    *_opt("--tls", tls), *node_options], env, log)
        code = await controller.wait()
        await _wait_nodes(children[1:], logs, NODE_GRACE if code == 0 else STOP_GRACE)
        return code
    finally:  # SIGTERM to every child still running (the controller writes its summary)
        await stop_all(children, 0.0, STOP_GRACE)


async def _spawn(children: list[Process], args: list[str], env: dict[str, str],
                 log: Path | None = None) -> Process:
    child = await start([sys.executable, "-c", ENTRY, *args], env, log)
    children.append(child)
    return child


async def _wait_nodes(nodes: list[Process], logs: dict[str, Path], grace: float) -> None:
    """Give nodes ``grace`` seconds in all to exit; show the log tail of any that failed
    (those still running are stopped on the way out)."""
    deadline = time.monotonic() + grace
    for (name, log), child in zip(logs.items(), nodes, strict=True):
        code = await wait_exit(child, max(0.0, deadline - time.monotonic()))
        if code not in (0, None):
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            said = f": {' | '.join(tail)}" if tail else " (it wrote nothing)"
            typer.echo(f"node {name!r}: {exit_reason(code)}{said}", err=True)


def network_transport(transport: str) -> str:
    """The transport between processes: as asked, "memory" meaning tcp."""
    return "tls" if transport == "tls" else "tcp"


def _opt(flag: str, value: str | Path | None) -> list[str]:
    return [] if value is None else [flag, str(value)]


def node_options(agent_command: str | None, agent_tls: Path | None) -> list[str]:
    """The ``peerflow node`` options that give each node its agent process."""
    return [*_opt("--agent-command", agent_command), *_opt("--agent-tls", agent_tls)]


def _kits(tmp: Path, job: Job) -> Path:
    provision(Project("processes", "controller", tuple(job.network.node_ids), ("admin",)),
              tmp / "kits")
    return tmp / "kits"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
