"""Ray as the cluster engine: a job's nodes sharded over Ray actors, its controller here.

``run_on_ray`` splits the network's nodes into shards of consecutive nodes (one
per CPU of the cluster unless told), places one Ray actor of one CPU per shard,
spread over the cluster's hosts (a ``SPREAD`` placement group), and runs the
job's controller in this process (the Ray driver). Each shard actor runs one
event loop hosting its nodes (``peerflow.actors.serve_shard``): values between
nodes of a shard stay in memory, values to other shards go over peerflow's TCP
transport (TLS with a throwaway project CA), so the trajectories are those of a
run in one process. Ray does placement, process lifetime, logs (a shard's
stderr shows in the driver's) and failure detection: a shard whose actor dies
aborts the run naming its nodes.

What a shard gets is bytes: the job spec, the shard map and the run's join
secret as msgpack (Ray only carries them); nothing peerflow sends is pickled.
``import ray`` happens here only, when a run starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from peerflow.actors import (
    CONTROLLER_NAME,
    DistOptController,
    RunResult,
    serve_shard,
    serve_shards,
    shard_guard,
    shard_of,
    split_nodes,
)
from peerflow.transport import (
    NetworkTransport,
    Project,
    TlsConfig,
    create_transport,
    join_address,
    provision,
    run_loop,
    split_address,
)

from ._consensus import in_process_timeout
from ._errors import JobError
from ._job import Job
from ._registry import build_executors

INSTALL_HINT = "--ray needs Ray, which is not installed: pip install 'peerflow[ray]'"
PLACEMENT_TIMEOUT = 60.0
JOIN_TIMEOUT = 120.0
"""Seconds for the shards to start and build their nodes, raised as for one process with
as many nodes (``in_process_timeout``): every shard reads the whole job."""
KIT_FILES = ("root.pem", "cert.pem", "key.pem")
Lost = Callable[[str, str], None]


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        JobError: Ray is not installed (the message tells how to install it).
    """
    try:
        import ray
    except ImportError:
        raise JobError(INSTALL_HINT) from None
    return ray


def connect_ray(address: str | None, shards: int | None = None) -> bool:
    """Connect this process to a Ray cluster unless it is connected already: ``address``
    (``auto``, ``HOST:PORT``, ``ray://HOST:10001``), or if None ``RAY_ADDRESS`` or else
    a new local Ray with a CPU per core, or per shard if ``shards`` asks for more. True
    if it connected now (then ``ray.shutdown()`` is the caller's).

    Raises:
        JobError: Ray is not installed, or the cluster cannot be reached.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    local = not (address or os.environ.get("RAY_ADDRESS"))
    cpus = {"num_cpus": max(os.cpu_count() or 1, shards or 0)} if local else {}
    try:
        ray.init(address=address or None, logging_level="WARNING", log_to_driver=True,
                 configure_logging=False, **cpus)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise JobError(f"cannot reach the Ray cluster {address or '(RAY_ADDRESS or local)'}: "
                       f"{exc}") from None
    return True


def default_shards(nodes: int) -> int:
    """One shard per CPU of the connected cluster, at most one per node."""
    cpus = int(import_ray().cluster_resources().get("CPU", 1))
    return max(1, min(cpus, nodes))


async def run_on_ray(job: Job, *, shards: int | None = None, scheme: str = "tcp",
                     listen: str | None = None,
                     controller: DistOptController | None = None) -> RunResult:
    """Run ``job`` with its nodes on Ray shard actors and its controller here.

    Connect first (``connect_ray``). ``listen`` is the controller's ``HOST:PORT`` (default:
    this host's Ray node address, any port); a wildcard host is announced to the
    shards as that address.

    Raises:
        JobError: Ray is missing, or ``shards`` does not fit the network.
    """
    ray = import_ray()
    nodes = job.network.node_ids
    try:
        split = split_nodes(nodes, shards or default_shards(len(nodes)))
    except ValueError as exc:
        raise JobError(f"--shards: {exc}") from None
    run_id = uuid.uuid4().hex
    secret = secrets.token_urlsafe(32) if scheme == "tcp" else None
    here = ray.util.get_node_ip_address()
    timeout = in_process_timeout(job.sync_timeout, len(nodes))
    with _kits(scheme, list(split)) as kits:
        transport = _transport(scheme, listen or join_address(here, 0), CONTROLLER_NAME,
                               run_id, secret, kits.get(CONTROLLER_NAME), split,
                               reconnect_window=0.0)
        common = msgspec.msgpack.encode({"job": job.spec(), "shards": split, "run": run_id,
                                         "secret": secret, "scheme": scheme})

        async def launch(address: str, lost: Lost) -> None:
            await _launch(ray, common, _announced(address, here), split, kits, run_id, lost)

        return await serve_shards(job.config, transport, split, launch,
                                  join_timeout=in_process_timeout(JOIN_TIMEOUT, len(nodes)),
                                  config_timeout=timeout, controller=controller)


def _announced(address: str, here: str) -> str:
    """``address`` with a wildcard host replaced by this host's Ray address."""
    host, port = split_address(address)
    return join_address(here, port) if host in ("0.0.0.0", "::", "") else address


async def _launch(ray: Any, common: bytes, controller: str, split: Mapping[str, Sequence[str]],
                  kits: Mapping[str, Any], run_id: str, lost: Lost) -> None:
    """Place one actor per shard, spread over the hosts; watch them until they end."""
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    group = placement_group([{"CPU": 1}] * len(split), strategy="SPREAD")
    actors: list[Any] = []
    try:
        try:
            await asyncio.wait_for(_future(group.ready()), PLACEMENT_TIMEOUT)
        except TimeoutError:
            cpus = ray.cluster_resources().get("CPU", 0)
            raise JobError(f"Ray cannot place {len(split)} shards of one CPU each within "
                           f"{PLACEMENT_TIMEOUT:g}s (the cluster has {cpus:g} CPUs): pass "
                           "fewer --shards") from None
        shared = ray.put(common)
        remote = ray.remote(num_cpus=1, max_restarts=0)(Shard)
        watches = []
        for index, shard in enumerate(split):
            actor = remote.options(name=f"peerflow-{run_id[:8]}-{shard}", scheduling_strategy=
                                   PlacementGroupSchedulingStrategy(group, index)).remote()
            actors.append(actor)
            ref = actor.serve.remote(shared, shard, controller, kits.get(shard))
            watches.append(_watch(shard, ref, lost))
        await asyncio.gather(*watches)
    finally:
        for actor in actors:
            ray.kill(actor)
        remove_placement_group(group)


async def _watch(shard: str, ref: Any, lost: Lost) -> None:
    """Wait for a shard's actor to end; if it failed or died, say so."""
    try:
        outcome = msgspec.json.decode(await _future(ref))
    except Exception as exc:
        lost(shard, _describe(exc))
        return
    if outcome.get("error"):
        lost(shard, outcome["error"])


def _future(ref: Any) -> asyncio.Future[Any]:
    return asyncio.wrap_future(ref.future())


def _describe(exc: BaseException) -> str:
    """A Ray error in one line: its cause if a task raised, else its first line."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}"
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0] if first else 'no detail'}"


class Shard:
    """A Ray actor's body: hosts one shard's nodes (see ``peerflow.actors.serve_shard``)."""

    def serve(self, common: bytes, shard: str, controller: str, kit: bytes | None) -> bytes:
        """Run shard ``shard`` of the job in ``common`` until the controller says finish;
        the outcome as JSON bytes (``{"status", "reason"}``, or ``{"error"}``)."""
        import ray

        data = msgspec.msgpack.decode(common)
        split = data["shards"]
        mine = frozenset(split[shard])
        job = Job.from_spec(data["job"])

        def build() -> dict[str, Any]:
            return {node: executor for node, executor in build_executors(job).items()
                    if node in mine}

        with _kit_folder(kit) as folder:
            transport = _transport(data["scheme"], f"{ray.util.get_node_ip_address()}:0",
                                   shard, data["run"], data["secret"], folder, split,
                                   connect_timeout=PLACEMENT_TIMEOUT)
        transport.guard = shard_guard(split)
        try:
            outcome = run_loop(lambda: serve_shard(shard, controller, transport, build))
        except Exception as exc:
            return msgspec.json.encode({"error": f"{type(exc).__name__}: {exc}"})
        return msgspec.json.encode(outcome)


def _transport(scheme: str, listen: str, name: str, run_id: str, secret: str | None,
               kit: Path | None, split: Mapping[str, Sequence[str]],
               **options: Any) -> NetworkTransport:
    """A transport named ``name`` carrying every node's name to its shard."""
    tls = None if kit is None else TlsConfig.from_dir(kit)
    transport = create_transport(f"{scheme}://{listen}", name=name, run_id=run_id, tls=tls,
                                 secret=secret, carriers=shard_of(split), coalesce=True,
                                 **options)
    assert isinstance(transport, NetworkTransport)
    return transport


@contextlib.contextmanager
def _kits(scheme: str, shards: list[str]) -> Iterator[dict[str, Any]]:
    """For tls: a throwaway project CA; the controller's kit folder and each shard's kit
    as msgpack bytes (``{file: bytes}``)."""
    if scheme != "tls":
        yield {}
        return
    with tempfile.TemporaryDirectory(prefix="peerflow-ray-kits-") as folder:
        made = provision(Project("ray", CONTROLLER_NAME, tuple(shards), ()), folder)
        kits: dict[str, Any] = {CONTROLLER_NAME: made[CONTROLLER_NAME]}
        for shard in shards:
            kits[shard] = msgspec.msgpack.encode(
                {name: (made[shard] / name).read_bytes() for name in KIT_FILES})
        yield kits


@contextlib.contextmanager
def _kit_folder(kit: bytes | None) -> Iterator[Path | None]:
    """A shard's kit bytes written to a private folder while its transport loads them."""
    if kit is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="peerflow-kit-") as folder:
        for name, content in msgspec.msgpack.decode(kit).items():
            (Path(folder) / name).write_bytes(content)
        yield Path(folder)
