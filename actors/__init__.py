"""peerflow.actors: the runtime — actors, mailboxes, controller, executors, panic."""

from __future__ import annotations

from ._actor import Actor
from ._async_executor import DEFAULT_MAX_WAIT, AsyncAlgorithmExecutor
from ._checks import (
    check_connected,
    is_symmetric,
    prepare_config,
    unweighted_nodes,
    with_default_weights,
)
from ._cluster import query_status, serve_controller, serve_node
from ._config import Config, ConfigError, Neighbor, Network, Node, network_from_data
from ._controller import CONTROLLER_NAME, Controller, DistOptController
from ._deploy import memory_transport
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
from ._executor import DEFAULT_SYNC_TIMEOUT, SyncAlgorithmExecutor
from ._latest import Latest, LatestMailbox
from ._local import LocalConfig, LocalPhase, local_configs
from ._mailbox import IterationMailbox, ScheduledMailbox
from ._result import PanicReport, RunResult
from ._run import run, simulate
from ._runtime import Runtime
from ._schedule import Schedule
from ._sharding import shard_guard, shard_of, split_nodes
from ._shards import serve_shard, serve_shards
from ._ticks import TickSchedule
from ._waitfor import WaitState

__all__ = [
    "Actor",
    "ActorDead",
    "ActorError",
    "AskTimeout",
    "AsyncAlgorithmExecutor",
    "CONTROLLER_NAME",
    "Config",
    "ConfigError",
    "Controller",
    "DEFAULT_MAX_WAIT",
    "DEFAULT_SYNC_TIMEOUT",
    "DistOptController",
    "IterationMailbox",
    "Latest",
    "LatestMailbox",
    "LocalConfig",
    "LocalPhase",
    "MailboxBreach",
    "Neighbor",
    "Network",
    "Node",
    "PanicReport",
    "RemoteError",
    "RunAborted",
    "RunResult",
    "Runtime",
    "Schedule",
    "ScheduledMailbox",
    "SyncAlgorithmExecutor",
    "SyncTimeout",
    "TaskFailed",
    "TickSchedule",
    "WaitState",
    "check_connected",
    "is_symmetric",
    "local_configs",
    "network_from_data",
    "memory_transport",
    "prepare_config",
    "query_status",
    "run",
    "serve_controller",
    "serve_node",
    "serve_shard",
    "serve_shards",
    "shard_guard",
    "shard_of",
    "simulate",
    "split_nodes",
    "unweighted_nodes",
    "with_default_weights",
]
