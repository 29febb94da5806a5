"""Child processes, supervised: started, stopped in steps, reaped, their exit codes told.

The CLI starts two kinds of processes, both through ``start`` and ``stop`` here:
agent processes (``AgentProcesses``, ``--agent-command``) and, for ``simulate
--processes``, the controller and node processes. An agent process is started
once its node listens, with the node's agent address and id in its environment
(``agent_environment``); one that dies with a non-zero code during the run
panics its node at once. Stopping a process waits ``grace`` seconds for it to
leave, then terminates it, then kills it, and always reaps it: no orphans.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process, TaskGroup

from ._agent_env import agent_environment
from ._agent_tls import AgentTls
from ._output import relay_lines
from ._task_exchanger import AgentHost

logger = logging.getLogger("peerflow.processes")

KILL_AFTER = 2.0
"""Seconds between terminating a process that outstayed its grace and killing it."""
OUTPUT_GRACE = 1.0
"""Seconds the output of stopped agents is still relayed (a child of theirs may hold it)."""


async def start(argv: Sequence[str], env: Mapping[str, str], log: Path | None = None, *,
                piped: bool = False) -> Process:
    """Start ``argv`` with ``env`` and no stdin; its output goes to ``log`` (None: ours;
    ``piped``: to the process's ``stdout`` and ``stderr`` streams, for the caller to read).

    Raises:
        OSError: the command cannot start.
    """
    output: Any = subprocess.PIPE if piped else None if log is None else log.open("wb")
    try:
        return await anyio.open_process(list(argv), env=dict(env), stdin=subprocess.DEVNULL,
                                        stdout=output, stderr=output)
    finally:
        if log is not None and not piped:
            output.close()


async def wait_exit(process: Process, timeout: float) -> int | None:
    """Return the process's exit code, or None if it is still running after ``timeout`` s."""
    with anyio.move_on_after(timeout):
        return await process.wait()
    return None


async def stop(process: Process, grace: float, kill_after: float = KILL_AFTER) -> int | None:
    """Wait ``grace`` seconds for the process to leave, then terminate it, then kill it
    ``kill_after`` seconds later; reap it and return its exit code."""
    await wait_exit(process, grace)
    for signal_it, level in ((process.terminate, logging.INFO), (process.kill, logging.WARNING)):
        if process.returncode is not None:
            break  # a terminate is the expected way out; a kill is worth a warning
        logger.log(level, "process %d still running: %s", process.pid, signal_it.__name__)
        with contextlib.suppress(ProcessLookupError):
            signal_it()
        await wait_exit(process, kill_after)
    return await process.wait()  # reaped; a piped process's output is closed by its reader


async def stop_all(processes: Iterable[Process], grace: float,
                   kill_after: float = KILL_AFTER) -> None:
    """``stop`` every process at once; not cancellable, so nothing is left behind."""
    with anyio.CancelScope(shield=True):
        async with anyio.create_task_group() as group:
            for process in processes:
                group.start_soon(stop, process, grace, kill_after)


def exit_reason(code: int) -> str:
    """How a process ended: its exit code, or the signal that killed it."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"its process was killed by {signal.Signals(-code).name}"
    return f"its process exited with code {code}"


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
        tls: secure mode: a folder holding each node's startup kit (the provision output);
            each agent process finds its kit through ``$PEERFLOW_AGENT_WORKSPACE``.

    Raises:
        ValueError: the command is empty or badly quoted.
    """

    def __init__(self, command: str | Sequence[str], *, grace: float = 5.0,
                 tls: str | Path | None = None) -> None:
        self.argv = agent_argv(command)
        self.grace = grace
        self.tls = tls
        self.processes: dict[str, Process] = {}
        self._group: TaskGroup | None = None
        self._relays: TaskGroup | None = None

    def launch(self, node: str, host: AgentHost) -> None:
        """Start ``node``'s agent process as soon as its agent server listens; ``{site}``
        and ``{agent_id}`` in the command's arguments become the node's name and agent id.
        Its output is relayed to stderr, each line prefixed with ``[node]``.

        Raises:
            AgentKitError: secure mode, and ``node``'s startup kit is missing or broken.
        """
        assert self._group is not None and self._relays is not None, \
            "launch() outside 'async with'"
        if self.tls is not None:
            host.agent.secure(AgentTls.load(self.tls, node))
        argv = [arg.replace("{site}", node).replace("{agent_id}", host.agent.agent_id)
                for arg in self.argv]
        self._group.start_soon(_launch, argv, node, host, self.processes, self._relays)

    async def __aenter__(self) -> AgentProcesses:
        self._relays = anyio.create_task_group()
        await self._relays.__aenter__()
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._group is not None and self._relays is not None
        self._group.cancel_scope.cancel()
        try:
            await self._group.__aexit__(None, None, None)
        finally:
            await stop_all(self.processes.values(), self.grace)
            self._relays.cancel_scope.deadline = anyio.current_time() + OUTPUT_GRACE
            await self._relays.__aexit__(None, None, None)


async def _launch(argv: list[str], node: str, host: AgentHost,
                  processes: dict[str, Process], relays: TaskGroup) -> None:
    """Start the node's agent once it listens and relay its output; if it cannot start or
    dies, the node loses it."""
    await host.agent.wait_listening()
    try:
        process = await start(argv, {**os.environ, **agent_environment(host.agent)},
                              piped=True)
    except OSError as exc:
        reason = f"its command {shlex.join(argv)!r} cannot start: {exc}"
    else:
        processes[node] = process
        for stream in (process.stdout, process.stderr):
            relays.start_soon(relay_lines, stream, node)
        code = await process.wait()
        if code == 0:
            return
        reason = exit_reason(code)
    host.panic(str(host.agent.lose(reason)))
