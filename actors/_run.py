"""Running a whole job: ``run`` (async, for embedding) and ``simulate`` (blocking).

The executors passed in are the very objects that run, so the caller can read
their state afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio

from peerflow.transport import Transport, run_loop

from ._checks import prepare_config
from ._config import Config, ConfigError
from ._controller import DistOptController
from ._deploy import deploy
from ._executor import SyncAlgorithmExecutor
from ._result import RunResult

Executors = Mapping[str, SyncAlgorithmExecutor] | Sequence[SyncAlgorithmExecutor]
Progress = Callable[[Mapping[str, int | None]], None]


async def run(config: Config, executors: Executors, transport: str | Transport = "memory", *,
              config_timeout: float = 10.0, run_timeout: float | None = None,
              on_progress: Progress | None = None, progress_interval: float = 0.1,
              allow_disconnected: bool = False,
              controller: DistOptController | None = None) -> RunResult:
    """Run ``config`` with one executor per node and return how it ended.

    Args:
        config: the network and the algorithm's ``extra`` parameters.
        executors: ``{node_id: executor}``, or a sequence in the network's node order.
        transport: "memory", "tcp" or "tls" (each node and the controller on its own
            loopback listener in this process; "tcp://HOST:0" picks the host), or a
            ``Transport`` instance that carries every actor.
        config_timeout: seconds each node may take to accept its config.
        run_timeout: seconds the whole run may take (None: the nodes' sync timeouts bound it).
        on_progress: called about every ``progress_interval`` seconds with each node's iteration.
        allow_disconnected: run a network that is not (strongly) connected, which
            cannot reach consensus; refused otherwise.
        controller: the job's controller, if not a ``DistOptController`` of ``config``
            (a workflow such as scatter and gather); its config must be ``config``.

    Warns:
        UserWarning: some neighbours had no weight; Metropolis-Hastings weights were set.

    Raises:
        ConfigError: the network is invalid or disconnected (unless allowed), or the
            executors do not match its nodes.
    """
    config = prepare_config(config, allow_disconnected=allow_disconnected)
    by_node = _executors_by_node(config, executors)
    controller = _controller(config, controller, config_timeout, run_timeout)
    async with (deploy(transport, config.network, by_node, controller),
                anyio.create_task_group() as group):
        if on_progress is not None:
            group.start_soon(_report_progress, by_node, on_progress, progress_interval)
        result = await controller.run_job()
        group.cancel_scope.cancel()
    if on_progress is not None:
        on_progress({node: ex.iteration for node, ex in by_node.items()})
    return result


def _controller(config: Config, controller: DistOptController | None, config_timeout: float,
                run_timeout: float | None) -> DistOptController:
    """The job's controller, given one or not, with ``config`` (the weights prepare_config
    filled in)."""
    if controller is None:
        return DistOptController(config, config_timeout=config_timeout, run_timeout=run_timeout)
    controller.config = config
    return controller


def simulate(config: Config, executors: Executors, transport: str | Transport = "memory",
             **options: Any) -> RunResult:
    """Blocking ``run``: runs the job in a fresh event loop (uvloop when installed)."""
    return run_loop(lambda: run(config, executors, transport, **options))


def _executors_by_node(config: Config, executors: Executors) -> dict[str, SyncAlgorithmExecutor]:
    ids = config.network.node_ids
    if isinstance(executors, Mapping):
        by_node = {str(k): v for k, v in executors.items()}
    else:
        if len(executors) != len(ids):
            raise ConfigError(f"{len(executors)} executors for {len(ids)} nodes")
        by_node = dict(zip(ids, executors, strict=True))
    missing, extra = sorted(set(ids) - by_node.keys()), sorted(by_node.keys() - set(ids))
    if missing or extra:
        raise ConfigError(f"executors do not match the network: no executor for {missing}, "
                          f"executors for unknown nodes {extra}")
    for node_id, executor in by_node.items():
        if not isinstance(executor, SyncAlgorithmExecutor):
            raise ConfigError(f"executor for {node_id!r} is a {type(executor).__name__}, "
                              "not a SyncAlgorithmExecutor")
    return by_node


async def _report_progress(executors: Mapping[str, SyncAlgorithmExecutor], on_progress: Progress,
                           interval: float) -> None:
    while True:
        on_progress({node: ex.iteration for node, ex in executors.items()})
        await anyio.sleep(interval)
