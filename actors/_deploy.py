"""Putting a job's actors on transports: one runtime in memory, or one per node over TCP/TLS.

In memory every actor shares one runtime. Over ``tcp``/``tls`` each node and
the controller get their own runtime and transport on their own loopback
listener, all in this process: the same wiring a multi-process run has, minus
the processes: each node reaches the controller and its neighbours only, under
the same role guards (``_roles``), and plain TCP carries a fresh join secret.
A lost peer connection makes the node panic ("lost peer"); the controller
losing a node aborts the run naming that node.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from pathlib import Path

from peerflow.transport import (
    Address,
    MemoryTransport,
    NetworkTransport,
    Project,
    Transport,
    create_transport,
    parse_address,
    provision,
)

from ._config import ConfigError, Network
from ._controller import Controller
from ._executor import SyncAlgorithmExecutor
from ._result import PanicReport
from ._roles import controller_guard, neighbourhoods, node_guard
from ._runtime import Runtime

STRICT_ENV = "PEERFLOW_STRICT"
"""Set to 1 to run every in-memory envelope through the codec (the test suite does)."""

MAX_RECONNECT_WINDOW = 2.0


def memory_transport(*, count_bytes: bool = False) -> MemoryTransport:
    """The transport of a "memory" run: strict if ``PEERFLOW_STRICT`` is 1; with
    ``count_bytes``, it counts what each node sends (``Transport.sent_bytes``)."""
    return MemoryTransport(strict=os.environ.get(STRICT_ENV) == "1", count_bytes=count_bytes)


@contextlib.asynccontextmanager
async def deploy(transport: str | Transport, network: Network,
                 executors: Mapping[str, SyncAlgorithmExecutor],
                 controller: Controller) -> AsyncIterator[None]:
    """Spawn the executors and the controller on ``transport``; stop them all on exit.

    Raises:
        ConfigError: unknown transport, or node names a network transport cannot carry.
    """
    if isinstance(transport, Transport):
        carrier = transport
    else:
        address = _parse(transport)
        if address.scheme != "memory":
            async with _networked(address, network, executors, controller):
                yield
            return
        carrier = memory_transport()
    async with carrier, Runtime(carrier) as runtime:
        for node_id, executor in executors.items():
            await runtime.spawn(executor, node_id)
        await runtime.spawn(controller)
        yield


def _parse(transport: str) -> Address:
    try:
        return parse_address(transport)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


@contextlib.asynccontextmanager
async def _networked(address: Address, network: Network,
                     executors: Mapping[str, SyncAlgorithmExecutor],
                     controller: Controller) -> AsyncIterator[None]:
    actors: dict[str, SyncAlgorithmExecutor | Controller] = {controller.name: controller,
                                                             **executors}
    bad = sorted(name for name in actors if "/" in name or not name)
    if bad:
        raise ConfigError(f"node names {bad} cannot be carried over {address.scheme}: "
                          "a name must be non-empty and without '/'")
    run_id = uuid.uuid4().hex
    window = reconnect_window(executors.values())
    peers = {controller.name: set(executors),
             **{node: {controller.name, *near}
                for node, near in neighbourhoods(network).items()}}
    async with contextlib.AsyncExitStack() as stack:
        transports = {name: await stack.enter_async_context(transport)
                      for name, transport in _transports(address, actors, run_id, window)}
        for name, transport in transports.items():
            for other in peers[name]:
                transport.add_route(other, str(transports[other].address), watch=True)
            transport.guard = node_guard(name, controller.name, peers[name]) \
                if name in executors else controller_guard(executors, controller.name, ())
        for name, actor in actors.items():
            runtime = await stack.enter_async_context(Runtime(transports[name], run_id))
            await runtime.spawn(actor, name)
        for name, executor in executors.items():
            transports[name].on_peer_lost = panic_on_lost_peer(executor)
        transports[controller.name].on_peer_lost = abort_on_lost_node(controller)
        yield


def _transports(address: Address, names: Mapping[str, object], run_id: str,
                window: float) -> Iterator[tuple[str, NetworkTransport]]:
    """One unopened transport per name, each listening on its own ephemeral port."""
    listen = Address(address.scheme, address.host, 0)
    secret = secrets.token_hex(16) if address.scheme == "tcp" else None
    with _kits(address.scheme, list(names)) as kits:
        built = [(name, create_transport(listen, name=name, run_id=run_id,
                                         tls=kits / name if kits else None, secret=secret,
                                         reconnect_window=window)) for name in names]
    for name, transport in built:
        assert isinstance(transport, NetworkTransport)
        yield name, transport


@contextlib.contextmanager
def _kits(scheme: str, names: list[str]) -> Iterator[Path | None]:
    """For tls: a throwaway project CA and one kit per name (loaded, then deleted)."""
    if scheme != "tls":
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="peerflow-kits-") as folder:
        provision(Project("simulate", names[0], tuple(names[1:]), ()), folder)
        yield Path(folder)


def reconnect_window(executors: Iterable[SyncAlgorithmExecutor]) -> float:
    """How long a broken peer connection may take to come back: half the shortest
    sync timeout, at most ``MAX_RECONNECT_WINDOW`` seconds."""
    return min([MAX_RECONNECT_WINDOW, *(ex.sync_timeout / 2 for ex in executors)])


def panic_on_lost_peer(executor: SyncAlgorithmExecutor) -> Callable[[str, str], None]:
    """An ``on_peer_lost`` callback: the node panics naming the peer it lost."""
    def lost(peer: str, reason: str) -> None:
        executor.panic(f"node {executor.id!r}: lost peer {peer!r}: {reason}", (peer,))
    return lost


def abort_on_lost_node(controller: Controller) -> Callable[[str, str], None]:
    """An ``on_peer_lost`` callback: the controller aborts the run naming the lost node."""
    def lost(peer: str, reason: str) -> None:
        if peer in controller.targets:
            controller._on_panic(PanicReport(f"lost node {peer!r}: {reason}", peer, None))
    return lost
