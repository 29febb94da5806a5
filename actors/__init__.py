"""peerflow.actors: the runtime — actors, mailboxes, controller, executors, panic."""

from __future__ import annotations

from ._actor import Actor
from ._checks import check_connected, is_symmetric, unweighted_nodes, with_default_weights
from ._cluster import query_status, serve_controller, serve_node
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
from ._executor import DEFAULT_SYNC_TIMEOUT, SyncAlgorithmExecutor
from ._mailbox import IterationMailbox
from ._result import PanicReport, RunResult
from ._run import run, simulate
from ._runtime import Runtime
from ._sharding import shard_guard, shard_of, split_nodes
from ._shards import serve_shard, serve_shards
from ._waitfor import WaitState

__all__ = [
    "Actor",
    "ActorDead",
    "ActorError",
    "AskTimeout",
    "CONTROLLER_NAME",
    "Config",
    "ConfigError",
    "Controller",
    "DEFAULT_SYNC_TIMEOUT",
    "DistOptController",
    "IterationMailbox",
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
    "TaskFailed",
    "WaitState",
    "check_connected",
    "is_symmetric",
    "local_configs",
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
