"""Runs with agent processes (``--agent-command``): one per node, and no orphans.

Each node that hosts an agent gets one process of the command, supervised by
``peerflow.agents.AgentProcesses``: started once the node listens, a non-zero exit
during the run panics its node, and when the run ends every process is given
``grace`` seconds to leave (the nodes have told their agents the job is over),
then terminated, then killed, and always reaped.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

import peerflow
from peerflow.actors import Config, ConfigError, RunResult, SyncAlgorithmExecutor
from peerflow.agents import AgentHost, AgentKitError, AgentProcesses, AgentTls
from peerflow.transport import run_loop

from ._errors import CliInputError

T = TypeVar("T")
BuildExecutor = Callable[[Mapping[str, Any]], SyncAlgorithmExecutor]

AgentCommand = Annotated[str | None, typer.Option(
    "--agent-command", help="Run each node's local work in an external agent process: "
    "this command, started once per node (e.g. \"python examples/trainer.py\"); {site} "
    "and {agent_id} in it become the node's name and its agent id.")]
AgentTlsKits = Annotated[Path | None, typer.Option(
    "--agent-tls", help="Secure agent links: mutual TLS with each node's startup kit from this "
    "folder (the provision output, or a node's own folder); the agent process finds it in "
    "$PEERFLOW_AGENT_WORKSPACE.")]


async def run_with_agents(config: Config, executors: Mapping[str, SyncAlgorithmExecutor],
                          command: str | Sequence[str], *, grace: float = 5.0,
                          tls: Path | None = None, **options: Any) -> RunResult:
    """``peerflow.run`` with one agent process per node that hosts an agent (over mutual
    TLS with each node's startup kit from ``tls``, if given)."""
    async with AgentProcesses(command, grace=grace, tls=tls) as agents:
        for node, executor in executors.items():
            if isinstance(executor, AgentHost):
                agents.launch(node, executor)
        return await peerflow.run(config, executors, **options)


async def serve_with_agent(command: str | Sequence[str], node: str,
                           serve: Callable[[BuildExecutor], Awaitable[T]],
                           build: BuildExecutor, *, grace: float = 5.0,
                           tls: Path | None = None) -> T:
    """``serve(build)`` for one node (``peerflow node``), starting its agent process once
    ``build`` has made the node's executor (over mutual TLS with the node's startup kit
    from ``tls``, if given).

    Raises:
        ConfigError: the executor built hosts no agent (the job runs none).
    """
    async with AgentProcesses(command, grace=grace, tls=tls) as agents:

        def build_host(spec: Mapping[str, Any]) -> SyncAlgorithmExecutor:
            executor = build(spec)
            if not isinstance(executor, AgentHost):
                raise ConfigError(f"node {node!r}: --agent-command given, but this job's "
                                  f"{type(executor).__name__} hosts no agent")
            agents.launch(node, executor)
            return executor

        return await serve(build_host)


def check_agent_tls(kits: Path | None, command: str | None, *sites: str) -> None:
    """Refuse ``--agent-tls`` without ``--agent-command``, or without each site's kit.

    Raises:
        CliInputError: naming the missing or broken kit file.
    """
    if kits is not None and not command:
        raise CliInputError("--agent-tls is for the agent links of --agent-command")
    for site in sites if kits is not None else ():
        try:
            AgentTls.load(kits, site)
        except AgentKitError as exc:
            raise CliInputError(f"--agent-tls: {exc}") from exc


def simulate_with_agents(config: Config, executors: Mapping[str, SyncAlgorithmExecutor],
                         command: str | Sequence[str], **options: Any) -> RunResult:
    """Blocking ``run_with_agents`` in a fresh event loop (uvloop when installed).

    Raises:
        CliInputError: the command or the configuration is wrong.
    """
    try:
        return run_loop(lambda: run_with_agents(config, executors, command, **options))
    except (ConfigError, ValueError, AgentKitError) as exc:
        raise CliInputError(str(exc)) from exc


def agent_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """``peerflow status`` lines for a node's agents (rows of ``agent_status``): which
    agent, the node's address it connects to, TLS or plain TCP, and from where."""
    return [f"    agent {row['agent_id']:<16} {row['address']:<22} "
            f"{'tls' if row.get('secure') else 'tcp'} "
            + (f"connected since {_clock(row['connected_since'])} from {row.get('peer')}, "
               f"last heartbeat {_clock(row['last_heartbeat'])}" if row["connected"] else
               f"not connected (last heartbeat {_clock(row['last_heartbeat'])})")
            + (f", task {row['task']!r}" if row.get("task") else "")
            + (f", {row['refused']} refused" if row.get("refused") else "") for row in rows]


def _clock(stamp: float | None) -> str:
    return "never" if stamp is None else time.strftime("%H:%M:%S", time.localtime(stamp))
