"""Multi-process and multi-host runs: a controller process and one process per node.

The controller's front desk is the ``Registry`` actor (``controller/admin``).
Each node process dials the controller (adopting its run id in the handshake),
spawns its ``NodeHost`` (``NAME/node``), asks to ``register`` (the answer is the
job spec, from which it builds its executor), spawns the executor and says
``ready``. Once every node is ready, the controller hands each host its
neighbours' addresses (``routes``), runs the job as ``DistOptController`` does
in one process, and tells every host to ``finish``. ``status`` (from an admin
client) reports each node's iteration and connections.

The controller declares a node lost as soon as its connection breaks without a
goodbye: the run aborts naming that node. A node that loses the controller ends.
Who may send what is checked by role (``_roles``): admins only read status, a
node reports only its own panic, and a node hears only the controller and, once
its routes came, its neighbours' values.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

import anyio

from peerflow.transport import Envelope, NetworkTransport, join_address, split_address

from ._actor import Actor, _describe
from ._config import Config, ConfigError
from ._controller import CONTROLLER_NAME, DistOptController
from ._deploy import abort_on_lost_node, panic_on_lost_peer, reconnect_window
from ._errors import ActorError
from ._executor import SyncAlgorithmExecutor
from ._host import Host
from ._result import PanicReport, RunResult
from ._roles import STATUS_TOPIC, controller_guard, neighbourhoods, node_guard
from ._runtime import Runtime

logger = logging.getLogger("peerflow.cluster")

REGISTRY = f"{CONTROLLER_NAME}/admin"
STATUS_TIMEOUT = 2.0
BuildExecutor = Callable[[Mapping[str, Any]], SyncAlgorithmExecutor]


REACHED_TOPIC = "reached"
"""What an aborted run's controller asks each node host: its result so far."""
REACHED_WAIT = 2.0
"""Seconds an aborted run's controller waits for those answers (a busy node's are lost)."""


def host_name(node: str) -> str:
    """The name of ``node``'s ``NodeHost``: the actor that runs the node's process side."""
    return f"{node}/node"


class Registry(Actor):
    """The controller's front desk: registration, readiness and status.

    Args:
        controller: the job's controller (its targets are the nodes).
        transport: the controller's network transport.
        job: the job spec every node builds its executor from.
    """

    def __init__(self, controller: DistOptController, transport: NetworkTransport,
                 job: Mapping[str, Any]) -> None:
        super().__init__(REGISTRY)
        self.controller, self.transport, self.job = controller, transport, dict(job)
        self.addresses: dict[str, str] = {}
        self.ready: set[str] = set()
        self.failed: set[str] = set()
        self.gone: set[str] = set()
        self.state = "waiting for nodes"
        self.joined = anyio.Event()
        self.failure: str | None = None

    async def handle(self, envelope: Envelope) -> Any:
        node = envelope.sender.partition("/")[0]
        if envelope.topic == STATUS_TOPIC:
            return await self.status()
        if node not in self.controller.targets:
            raise ValueError(f"{node!r} is not a node of this job")
        if envelope.topic == "register":
            return self._register(node, envelope.body)
        if envelope.topic == "ready":
            self.ready.add(node)
            if self.ready == set(self.controller.targets):
                self.joined.set()
        elif envelope.topic == "failed":  # e.g. it cannot build its executor from the job
            self.failed.add(node)
            self._fail(f"node {node!r} cannot join: {envelope.body}")
        else:
            raise ValueError(f"the registry has no task named {envelope.topic!r}")
        return "ok"

    def _register(self, node: str, body: Any) -> dict[str, Any]:
        listen = body.get("listen") if isinstance(body, dict) else None
        if not isinstance(listen, str):
            raise ValueError(f"node {node!r} registered without a listening address")
        host, port = split_address(listen)
        if host in ("0.0.0.0", "::", ""):  # reachable where it connected from
            host = split_address(self.transport.peer_address(node) or listen)[0]
        self.addresses[node] = join_address(host, port)
        self.transport.watch(node)
        logger.info("node %r registered, listening on %s", node, self.addresses[node])
        return self.job

    def lost(self, peer: str, reason: str) -> None:
        """A peer's connection broke: fail the join if it was a node."""
        if peer in self.controller.targets:
            self.gone.add(peer)
            self._fail(f"node {peer!r} was lost while joining: {reason}")

    def _fail(self, reason: str) -> None:
        if not self.joined.is_set():
            self.failure = reason
            self.joined.set()

    def routes(self) -> dict[str, dict[str, str]]:
        """Each node's host and the addresses of its in- and out-neighbours."""
        return {host_name(node): {p: self.addresses[p] for p in sorted(peers)}
                for node, peers in neighbourhoods(self.controller.config.network).items()}

    async def status(self) -> dict[str, Any]:
        """The run, its state, and per node: address, iteration and connections."""
        nodes: dict[str, Any] = {}

        async def one(node: str) -> None:
            try:
                nodes[node] = await self.ask(host_name(node), "status",
                                             timeout=STATUS_TIMEOUT)
            except ActorError as exc:
                nodes[node] = {"error": str(exc)}

        async with anyio.create_task_group() as group:
            for node in self.addresses:
                group.start_soon(one, node)
        return {"run": self.transport.run_id, "state": self.state,
                "controller": {"address": self.transport.address,
                               "connections": self.transport.connections()},
                "nodes": [{"name": n, "address": self.addresses.get(n),
                           **nodes.get(n, {"error": "not registered"})}
                          for n in self.controller.targets]}


async def serve_controller(config: Config, job: Mapping[str, Any], transport: NetworkTransport,
                           *, join_timeout: float = 60.0, config_timeout: float = 10.0,
                           on_listening: Callable[[str], None] | None = None,
                           controller: DistOptController | None = None) -> RunResult:
    """Run a job whose nodes are other processes; return how it ended.

    ``transport`` (not yet opened) must admit the nodes as joiners. ``controller``
    runs the job if given (a workflow such as scatter and gather), else a
    ``DistOptController`` of ``config``.
    """
    controller = controller or DistOptController(config, config_timeout=config_timeout)
    transport.guard = controller_guard(controller.targets, REGISTRY)
    async with transport, Runtime(transport, transport.run_id) as runtime:
        registry = Registry(controller, transport, job)
        await runtime.spawn(controller)
        await runtime.spawn(registry)
        abort = abort_on_lost_node(controller)
        transport.on_peer_lost = lambda peer, why: (registry.lost(peer, why), abort(peer, why))
        if on_listening is not None:
            on_listening(str(transport.address))
        result = await _join(registry, join_timeout)
        if result is None:
            await controller.send_and_wait("routes", registry.routes(), timeout=config_timeout)
            registry.state = "running"
            result = await controller.run_job()
        registry.state = result.status
        if result.status == "aborted":
            result = await _with_reached(registry, result, config_timeout)
        for node in registry.addresses.keys() - registry.failed:  # those have gone already
            registry.tell(host_name(node), "finish", {"status": result.status,
                                                       "reason": result.reason})
    return result


async def _with_reached(registry: Registry, result: RunResult, timeout: float) -> RunResult:
    """An aborted run's result with what each node still there had reached (its result so
    far, and its iteration), asked of the nodes before they are told to finish."""
    there = registry.addresses.keys() - registry.failed - registry.gone
    answers, _ = await registry.ask_each(REACHED_TOPIC, {host_name(node): None for node in there},
                                         timeout=min(timeout, REACHED_WAIT))
    reached = {host.rpartition("/")[0]: answer for host, answer in answers.items()
               if isinstance(answer, dict)}
    return dataclasses.replace(result, results={n: a["result"] for n, a in reached.items()},
                               reached={n: a["iteration"] for n, a in reached.items()})


async def _join(registry: Registry, timeout: float) -> RunResult | None:
    """Wait for every node to be ready; an aborted result if one is lost or late."""
    with anyio.move_on_after(timeout):
        await registry.joined.wait()
    if registry.joined.is_set() and registry.failure is None:
        return None
    missing = sorted(set(registry.controller.targets) - registry.ready)
    reason = registry.failure or f"nodes {missing} did not join within {timeout:g}s"
    return RunResult.aborted(PanicReport(reason, missing[0] if missing else None, None), {})


class NodeHost(Host):
    """A node process's own actor, beside its executor: takes routes, reports status,
    hears ``finish``. (Not an agent: agents are external trainers, see ``peerflow.agents``.)

    Args:
        node: the node's name.
        transport: the node's network transport.
        neighbours: the names the node's guard admits besides the controller; the
            routes fill it.
    """

    def __init__(self, node: str, transport: NetworkTransport, neighbours: set[str]) -> None:
        super().__init__(host_name(node))
        self.node, self.transport, self.neighbours = node, transport, neighbours
        self.executor: SyncAlgorithmExecutor | None = None

    async def handle(self, envelope: Envelope) -> Any:
        self.check_sender(envelope)
        if envelope.topic == "routes":
            for peer, address in dict(envelope.body).items():
                self.transport.add_route(peer, address, watch=True)
                self.neighbours.add(peer)
            return "ok"
        if envelope.topic == STATUS_TOPIC:
            return {"iteration": None if self.executor is None else self.executor.iteration,
                    "listen": self.transport.address,
                    "connections": self.transport.connections(),
                    "agents": [] if self.executor is None else self.executor.agent_status()}
        if envelope.topic == REACHED_TOPIC:  # an aborted run's controller asks
            return self._reached()
        if envelope.topic == "finish":
            return self.finish(dict(envelope.body or {}))
        raise ValueError(f"node host {self.name!r} has no task named {envelope.topic!r}")

    def _reached(self) -> dict[str, Any] | None:
        """The node's iteration and result so far (where its executor has a ``to_result``)."""
        to_result = getattr(self.executor, "to_result", None)
        if self.executor is None or to_result is None:
            return None
        return {"iteration": self.executor.iteration, "result": to_result()}

    def on_peer_lost(self, peer: str, reason: str) -> None:
        if peer == CONTROLLER_NAME:
            super().on_peer_lost(peer, reason)
        elif self.executor is not None:
            panic_on_lost_peer(self.executor)(peer, reason)


async def serve_node(name: str, controller_address: str, transport: NetworkTransport,
                     build: BuildExecutor, *, join_timeout: float = 60.0) -> dict[str, Any]:
    """Join the controller's run as node ``name``; return ``{"status", "reason"}`` at the end.

    Raises:
        TransportError: the controller cannot be reached or refuses this node.
        TimeoutError: it did not answer within ``join_timeout``.
        ActorError: registration failed (e.g. the name is not a node of the job).
    """
    neighbours: set[str] = set()  # the guard lets them in once the routes name them
    transport.guard = node_guard(name, CONTROLLER_NAME, neighbours)
    async with transport:
        transport.add_route(CONTROLLER_NAME, controller_address, watch=True)
        with anyio.fail_after(join_timeout):
            await transport.connect(CONTROLLER_NAME)
        failure: Exception | None = None
        async with Runtime(transport, transport.run_id) as runtime:
            host = await runtime.spawn(NodeHost(name, transport, neighbours))
            transport.on_peer_lost = host.on_peer_lost
            try:
                await _join_and_run(runtime, host, build, join_timeout)
            except Exception as exc:  # raised below, out of the runtime's task group:
                failure = exc         # as it is, not wrapped in an exception group
    if failure is not None:
        raise failure
    return host.outcome


async def _join_and_run(runtime: Runtime, host: NodeHost, build: BuildExecutor,
                        timeout: float) -> None:
    """Register, build and spawn the executor, say ready, and wait for ``finish``;
    if the executor cannot be built, tell the controller why (it aborts the run)."""
    job = await host.ask(REGISTRY, "register", {"listen": host.transport.address},
                         timeout=timeout)
    try:
        executor = build(job)
    except Exception as exc:
        with contextlib.suppress(ActorError):
            why = str(exc) if isinstance(exc, ConfigError) else _describe(exc)
            await host.ask(REGISTRY, "failed", why, timeout=timeout)
        raise
    host.executor = await runtime.spawn(executor, host.node)
    host.transport.reconnect_window = reconnect_window([executor])
    await host.ask(REGISTRY, "ready", timeout=timeout)
    await host.done.wait()


async def query_status(controller_address: str, transport: NetworkTransport,
                       timeout: float = 10.0) -> dict[str, Any]:
    """Ask a running controller for its status, as an admin client.

    Raises:
        TransportError: the controller cannot be reached or refuses this client.
        ActorError: it did not answer in time.
    """
    async with transport:
        transport.add_route(CONTROLLER_NAME, controller_address)
        with anyio.fail_after(timeout):
            await transport.connect(CONTROLLER_NAME)
        async with Runtime(transport, transport.run_id) as runtime:
            client = await runtime.spawn(Actor(transport.name))
            return dict(await client.ask(REGISTRY, "status", timeout=timeout))
