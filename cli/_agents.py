"""Agent processes for a run (``--agent-command``): one per node, and no orphans.

Each node that hosts an agent gets one process of the command, started once the
node listens, with the node's agent address and id in its environment (see
``peerflow.agents.agent_environment``). A process that dies with a non-zero code
during the run panics its node at once. When the run ends every process is given
``grace`` seconds to leave (the nodes have told their agents the job is over),
then terminated, then killed, and always reaped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any, TypeVar

import anyio
import typer
from anyio.abc import Process, TaskGroup

import peerflow
from peerflow.actors import Config, ConfigError, RunResult, SyncAlgorithmExecutor
from peerflow.agents import AgentHost, agent_environment
from peerflow.transport import run_loop

from ._errors import CliInputError

logger = logging.getLogger("peerflow.agents")

T = TypeVar("T")
BuildExecutor = Callable[[Mapping[str, Any]], SyncAlgorithmExecutor]

AgentCommand = Annotated[str | None, typer.Option(
    "--agent-command", help="Run each node's local steps in an external agent process: "
    "this command, started once per node (e.g. \"python examples/trainer.py\").")]


def agent_argv(command: str | Sequence[str]) -> list[str]:
    """Split a command line the way a POSIX shell would (no shell is run).

    Raises:
        ValueError: the command is empty or badly quoted.
    """
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if not argv:
        raise ValueError("the agent command is empty")
    return argv


class AgentProcesses:
    """Agent processes started by ``launch`` while ``async with`` runs; stopped on the way out.

    An error of the block comes out as it is (the launches' task group is closed
    without it, so it is not wrapped in an exception group).

    Args:
        command: the agent command, a string split like a shell would, or an argv.
        grace: seconds each process may take to leave at the end before it is terminated.

    Raises:
        ValueError: the command is empty or badly quoted.
    """

    def __init__(self, command: str | Sequence[str], *, grace: float = 5.0) -> None:
        self.argv = agent_argv(command)
        self.grace = grace
        self.processes: dict[str, Process] = {}
        self._group: TaskGroup | None = None

    def launch(self, node: str, host: AgentHost) -> None:
        """Start ``node``'s agent process as soon as its agent server listens."""
        assert self._group is not None, "launch() outside 'async with'"
        self._group.start_soon(_launch, self.argv, node, host, self.processes)

    async def __aenter__(self) -> AgentProcesses:
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._group is not None
        self._group.cancel_scope.cancel()
        try:
            await self._group.__aexit__(None, None, None)
        finally:
            with anyio.CancelScope(shield=True):
                async with anyio.create_task_group() as group:
                    for process in self.processes.values():
                        group.start_soon(_stop, process, self.grace)


async def run_with_agents(config: Config, executors: Mapping[str, SyncAlgorithmExecutor],
                          command: str | Sequence[str], *, grace: float = 5.0,
                          **options: Any) -> RunResult:
    """``peerflow.run`` with one agent process per node that hosts an agent."""
    async with AgentProcesses(command, grace=grace) as agents:
        for node, executor in executors.items():
            if isinstance(executor, AgentHost):
                agents.launch(node, executor)
        return await peerflow.run(config, executors, **options)


async def serve_with_agent(command: str | Sequence[str], node: str,
                           serve: Callable[[BuildExecutor], Awaitable[T]],
                           build: BuildExecutor, *, grace: float = 5.0) -> T:
    """``serve(build)`` for one node (``peerflow node``), starting its agent process once
    ``build`` has made the node's executor.

    Raises:
        ConfigError: the executor built hosts no agent (the job runs none).
    """
    async with AgentProcesses(command, grace=grace) as agents:

        def build_host(spec: Mapping[str, Any]) -> SyncAlgorithmExecutor:
            executor = build(spec)
            if not isinstance(executor, AgentHost):
                raise ConfigError(f"node {node!r}: --agent-command given, but this job's "
                                  f"{type(executor).__name__} hosts no agent")
            agents.launch(node, executor)
            return executor

        return await serve(build_host)


def simulate_with_agents(config: Config, executors: Mapping[str, SyncAlgorithmExecutor],
                         command: str | Sequence[str], **options: Any) -> RunResult:
    """Blocking ``run_with_agents`` in a fresh event loop (uvloop when installed).

    Raises:
        CliInputError: the command or the configuration is wrong.
    """
    try:
        return run_loop(lambda: run_with_agents(config, executors, command, **options))
    except (ConfigError, ValueError) as exc:
        raise CliInputError(str(exc)) from exc


def agent_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """``peerflow status`` lines for a node's agents (rows of ``agent_status``)."""
    return [f"    agent {row['agent_id']:<16} {row['address']:<22} "
            + (f"connected since {_clock(row['connected_since'])}, last heartbeat "
               f"{_clock(row['last_heartbeat'])}" if row["connected"] else
               f"not connected (last heartbeat {_clock(row['last_heartbeat'])})")
            + (f", task {row['task']!r}" if row.get("task") else "") for row in rows]


def _clock(stamp: float | None) -> str:
    return "never" if stamp is None else time.strftime("%H:%M:%S", time.localtime(stamp))


async def _launch(argv: list[str], node: str, host: AgentHost,
                  processes: dict[str, Process]) -> None:
    """Start the node's agent once it listens; if it cannot start or dies, the node loses it."""
    await host.agent.wait_listening()
    env = {**os.environ, **agent_environment(host.agent)}
    try:
        process = await anyio.open_process(argv, env=env, stdin=subprocess.DEVNULL,
                                           stdout=None, stderr=None)
    except OSError as exc:
        reason = f"its command {shlex.join(argv)!r} cannot start: {exc}"
    else:
        processes[node] = process
        code = await process.wait()
        if code == 0:
            return
        reason = _exit_reason(code)
    host.panic(str(host.agent.lose(reason)))


def _exit_reason(code: int) -> str:
    """How a process ended: its exit code, or the signal that killed it."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"its process was killed by {signal.Signals(-code).name}"
    return f"its process exited with code {code}"


async def _stop(process: Process, grace: float) -> None:
    """Wait ``grace`` seconds for the process to leave, then terminate, then kill; reap it."""
    with anyio.move_on_after(grace):
        await process.wait()
    for signal_it in (process.terminate, process.kill):
        if process.returncode is not None:
            break
        logger.warning("agent process %d still running: %s", process.pid, signal_it.__name__)
        with contextlib.suppress(ProcessLookupError):
            signal_it()
        with anyio.move_on_after(2.0):
            await process.wait()
    await process.aclose()
