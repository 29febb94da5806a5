"""Sharded runs: many nodes per process, one network endpoint per process (a shard).

A shard is a process that hosts a block of the job's nodes on one event loop and
one ``NetworkTransport`` named after the shard, which carries its nodes' names
(``shard_of``): a value for a node of the same shard is handed over in
memory, one for a node of another shard goes over TCP (or TLS) to that shard,
chosen per recipient by the transport. The controller runs elsewhere (in a Ray
driver, say) and reaches every node through its shard.

The controller's ``ShardDesk`` (``controller/shards``) hears each shard's
``ShardHost`` (``SHARD/host``) register its listening address, then say
``ready`` once its executors run; it then gives each shard the addresses of the
shards its nodes exchange with (``routes``), the controller runs the job as in
one process, and the desk tells every shard to ``finish``. Whoever starts the
shard processes (``launch``) watches them too: a shard that dies, or whose
connection breaks without goodbye, aborts the run naming its nodes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio

from peerflow.transport import Envelope, NetworkTransport, join_address, split_address

from ._actor import Actor
from ._config import Config
from ._controller import CONTROLLER_NAME, DistOptController
from ._deploy import reconnect_window
from ._executor import SyncAlgorithmExecutor
from ._host import Host
from ._result import PanicReport, RunResult
from ._runtime import Runtime
from ._sharding import shard_controller_guard, shard_routes

logger = logging.getLogger("peerflow.shards")

SHARD_DESK = f"{CONTROLLER_NAME}/shards"
FINISH_GRACE = 10.0
ShardLost = Callable[[str, str], None]
"""Called with (shard, reason) when a shard process dies or fails."""
Launch = Callable[[str, ShardLost], Awaitable[None]]
"""Starts the shard processes given the controller's address and watches them until they
end, calling ``ShardLost`` for each that fails; cancelled once the run is over."""


def host_name(shard: str) -> str:
    """The name of ``shard``'s ``ShardHost``."""
    return f"{shard}/host"


class ShardDesk(Actor):
    """The controller's front desk for shards: registration, readiness, routes, loss.

    Args:
        controller: the job's controller.
        transport: the controller's network transport.
        shards: each shard's nodes.
    """

    def __init__(self, controller: DistOptController, transport: NetworkTransport,
                 shards: Mapping[str, Sequence[str]]) -> None:
        super().__init__(SHARD_DESK)
        self.controller, self.transport, self.shards = controller, transport, dict(shards)
        self.addresses: dict[str, str] = {}
        self.ready: set[str] = set()
        self.joined = anyio.Event()
        self.failure: str | None = None
        self.over = False

    async def handle(self, envelope: Envelope) -> Any:
        shard = envelope.sender.partition("/")[0]
        if envelope.topic == "register":
            host, port = split_address(str(envelope.body))
            if host in ("0.0.0.0", "::", ""):  # reachable where it connected from
                host = split_address(self.transport.peer_address(shard) or "")[0]
            self.addresses[shard] = join_address(host, port)
            self.transport.watch(shard)
        elif envelope.topic == "ready":
            self.ready.add(shard)
            if self.ready == self.shards.keys():
                self.joined.set()
        else:
            raise ValueError(f"the shard desk has no task named {envelope.topic!r}")
        return "ok"

    def lost(self, shard: str, reason: str) -> None:
        """A shard died or its connection broke: fail the join, or abort the run."""
        if shard not in self.shards or self.over:
            return
        nodes = self.shards[shard]
        shown = ", ".join(nodes[:10]) + (f", ... ({len(nodes)} nodes)" * (len(nodes) > 10))
        self.fail(f"lost shard {shard!r} hosting nodes [{shown}]: {reason}", nodes[0])

    def fail(self, reason: str, node: str | None) -> None:
        """Fail the join if it is under way, else abort the run (once it is over: nothing)."""
        if self.over:
            return
        if not self.joined.is_set():
            self.failure = self.failure or reason
            self.joined.set()
        else:
            self.controller.abort(PanicReport(reason, node, None))

    async def send_routes(self, timeout: float) -> None:
        """Give each shard the addresses of the shards it exchanges with."""
        peers = shard_routes(self.controller.config.network, self.shards)
        async with anyio.create_task_group() as group:
            for shard, others in peers.items():
                routes = {other: self.addresses[other] for other in sorted(others)}
                group.start_soon(lambda s, r: self.ask(host_name(s), "routes", r,
                                                       timeout=timeout), shard, routes)

    def finish(self, result: RunResult) -> None:
        self.over = True
        for shard in self.addresses:
            self.tell(host_name(shard), "finish", {"status": result.status,
                                                   "reason": result.reason})


async def serve_shards(config: Config, transport: NetworkTransport,
                       shards: Mapping[str, Sequence[str]], launch: Launch, *,
                       join_timeout: float = 120.0, config_timeout: float = 10.0,
                       controller: DistOptController | None = None) -> RunResult:
    """Run a job whose nodes live in shard processes; return how it ended.

    ``transport`` (not yet opened) must carry each node's name to its shard
    (``shard_of``) and admit the shards. ``controller`` runs the job if given (a
    workflow), else a ``DistOptController`` of ``config``.
    """
    controller = controller or DistOptController(config, config_timeout=config_timeout)
    transport.guard = shard_controller_guard(shards)
    async with transport, Runtime(transport, transport.run_id) as runtime, \
            anyio.create_task_group() as group:
        desk = ShardDesk(controller, transport, shards)
        await runtime.spawn(controller)
        await runtime.spawn(desk)
        transport.on_peer_lost = desk.lost
        launched = anyio.Event()
        group.start_soon(_launch, launch, str(transport.address), desk, launched)
        with anyio.move_on_after(join_timeout):
            await desk.joined.wait()
        result = _joined(desk, join_timeout)
        if result is None:
            await desk.send_routes(config_timeout)
            result = await controller.run_job()
        desk.finish(result)
        with anyio.move_on_after(FINISH_GRACE):  # let the shards end on their own
            await launched.wait()
        group.cancel_scope.cancel()
    return result


async def _launch(launch: Launch, address: str, desk: ShardDesk, done: anyio.Event) -> None:
    """Start and watch the shards; a failure to start them fails the join."""
    try:
        await launch(address, desk.lost)
    except Exception as exc:
        desk.fail(f"cannot start the shards: {exc}", None)
    finally:
        done.set()


def _joined(desk: ShardDesk, timeout: float) -> RunResult | None:
    """None if every shard is ready; else an aborted result naming what went wrong."""
    if desk.joined.is_set() and desk.failure is None:
        return None
    missing = sorted(desk.shards.keys() - desk.ready)
    reason = desk.failure or f"shards {missing} were not ready within {timeout:g}s"
    node = desk.shards[missing[0]][0] if missing else None
    return RunResult.aborted(PanicReport(reason, node, None), {})


class ShardHost(Host):
    """A shard's own actor: takes routes and ``finish`` from the controller."""

    def __init__(self, shard: str, transport: NetworkTransport) -> None:
        super().__init__(host_name(shard))
        self.transport = transport

    async def handle(self, envelope: Envelope) -> Any:
        self.check_sender(envelope)
        if envelope.topic == "routes":  # connected now: a busy loop later is slow to accept
            routes = dict(envelope.body)
            for peer, address in routes.items():
                self.transport.add_route(peer, address)
            async with anyio.create_task_group() as group:  # one side dials: no crossed links
                for peer in (peer for peer in routes if self.transport.name < peer):
                    group.start_soon(self.transport.connect, peer)
            return "ok"
        if envelope.topic == "finish":
            self.finish(dict(envelope.body or {}))
            return None
        raise ValueError(f"{self.name!r} has no task named {envelope.topic!r}")



async def serve_shard(shard: str, controller_address: str, transport: NetworkTransport,
                      build: Callable[[], Mapping[str, SyncAlgorithmExecutor]], *,
                      join_timeout: float = 120.0) -> dict[str, Any]:
    """Host ``build()``'s executors as shard ``shard`` of the controller's run; return
    ``{"status", "reason"}`` once the run is over.

    ``transport`` (not yet opened, named ``shard``) must carry the job's nodes to
    their shards (``shard_of``) and be bound to the controller's run.

    Raises:
        TransportError: the controller cannot be reached or refuses this shard.
        TimeoutError: it did not answer within ``join_timeout``.
        ActorError: registration failed.
    """
    async with transport:
        transport.add_route(CONTROLLER_NAME, controller_address, watch=True)
        with anyio.fail_after(join_timeout):
            await transport.connect(CONTROLLER_NAME)
        async with Runtime(transport, transport.run_id) as runtime:
            host = await runtime.spawn(ShardHost(shard, transport))
            transport.on_peer_lost = host.on_peer_lost
            await host.ask(SHARD_DESK, "register", transport.address, timeout=join_timeout)
            executors = build()
            for node, executor in executors.items():
                await runtime.spawn(executor, node)
            transport.reconnect_window = reconnect_window(executors.values())
            await host.ask(SHARD_DESK, "ready", timeout=join_timeout)
            await host.done.wait()
            for executor in executors.values():  # the run is over: end fast (see stop)
                executor.stop()
    return host.outcome
