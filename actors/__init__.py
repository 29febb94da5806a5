"""peerflow.actors: the runtime — actors, mailboxes, controller, executors, panic."""

from __future__ import annotations

from ._actor import Actor
from ._agent import AsyncAgent, agent_environment
from ._agent_blocking import Agent
from ._agent_link import LinkSettings
from ._agent_protocol import (
    RC,
    AgentClosed,
    AgentError,
    AgentFailed,
    AgentGone,
    AgentProtocolError,
    AgentRefused,
    AgentResultError,
    CallStateError,
    Task,
)
from ._agent_server import AgentServer
from ._checks import check_connected, is_symmetric, unweighted_nodes, with_default_weights
from ._config import Config, ConfigError, LocalConfig, Neighbor, Network, Node, local_configs
from ._controller import CONTROLLER_NAME, Controller, DistOptController
from ._errors import (
    ActorDead,
    ActorError,
    AskTimeout,
    MailboxBreach,
    RemoteError,
    RunAborted,
    SyncTimeout,
    TaskFailed,
)
from ._executor import SyncAlgorithmExecutor
from ._mailbox import IterationMailbox
from ._result import PanicReport, RunResult
from ._run import run, simulate
from ._runtime import Runtime
from ._task_exchanger import AgentHost, TaskExchanger, agent_status

__all__ = [
    "CONTROLLER_NAME",
    "RC",
    "Actor",
    "ActorDead",
    "ActorError",
    "Agent",
    "AgentClosed",
    "AgentError",
    "AgentFailed",
    "AgentGone",
    "AgentHost",
    "AgentProtocolError",
    "AgentRefused",
    "AgentResultError",
    "AgentServer",
    "AsyncAgent",
    "AskTimeout",
    "CallStateError",
    "Config",
    "ConfigError",
    "Controller",
    "DistOptController",
    "IterationMailbox",
    "LinkSettings",
    "LocalConfig",
    "MailboxBreach",
    "Neighbor",
    "Network",
    "Node",
    "PanicReport",
    "RemoteError",
    "RunAborted",
    "RunResult",
    "Runtime",
    "SyncAlgorithmExecutor",
    "SyncTimeout",
    "Task",
    "TaskExchanger",
    "TaskFailed",
    "agent_environment",
    "agent_status",
    "check_connected",
    "is_symmetric",
    "local_configs",
    "run",
    "simulate",
    "unweighted_nodes",
    "with_default_weights",
]
