"""peerflow.agents: external trainers — the agent protocol, its link, both ends of it.

A node whose work another process does (a ``TaskExchanger``, or any ``AgentHost``)
serves one agent; the agent (``Agent``, blocking, or ``AsyncAgent``) connects,
takes tasks and returns results. NVFlare's names are here too (``FlareAgent``,
``FlareAgentWithCellPipe``, ``Task``, ``TaskResult``, ``RC``, ``MetaKey``), so a
FlareAgent trainer runs with only its imports changed. Agents sit above the actor
runtime and below the algorithms: transport <- actors <- agents <- algorithms.
"""

from __future__ import annotations

from ._agent import AsyncAgent
from ._agent_blocking import Agent, FlareAgent, FlareAgentWithCellPipe
from ._agent_env import agent_environment
from ._agent_link import LinkSettings
from ._agent_protocol import (
    AgentClosed,
    AgentError,
    AgentFailed,
    AgentGone,
    AgentProtocolError,
    AgentRefused,
    AgentResultError,
    CallStateError,
)
from ._agent_server import AgentServer
from ._agent_tls import AgentKitError, AgentTls, trainer_tls_context
from ._flare_defs import RC, MetaKey, Task, TaskResult
from ._processes import AgentProcesses, agent_argv, exit_reason, start, stop, stop_all, wait_exit
from ._task_exchanger import AgentHost, TaskExchanger, agent_status

__all__ = [
    "RC",
    "Agent",
    "AgentClosed",
    "AgentError",
    "AgentFailed",
    "AgentGone",
    "AgentKitError",
    "AgentHost",
    "AgentProcesses",
    "AgentProtocolError",
    "AgentRefused",
    "AgentResultError",
    "AgentServer",
    "AgentTls",
    "AsyncAgent",
    "CallStateError",
    "FlareAgent",
    "FlareAgentWithCellPipe",
    "LinkSettings",
    "MetaKey",
    "Task",
    "TaskExchanger",
    "TaskResult",
    "agent_argv",
    "agent_environment",
    "agent_status",
    "exit_reason",
    "start",
    "stop",
    "stop_all",
    "trainer_tls_context",
    "wait_exit",
]
