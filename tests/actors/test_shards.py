"""Sharded runs without Ray: shards as tasks of this process, each on its own TCP transport."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

import peerflow
from peerflow.actors import (
    CONTROLLER_NAME,
    RunResult,
    serve_shard,
    serve_shards,
    shard_guard,
    shard_of,
    split_nodes,
)
from peerflow.jobs import Job, build_executors, build_network
from peerflow.transport import Project, TcpTransport, TlsConfig, provision


def consensus_job(nodes: int = 12, iterations: int = 30, sync_timeout: float = 10.0) -> Job:
    network = build_network("random", nodes, 3, None)
    return Job("consensus", iterations, 0, sync_timeout, network)


async def run_sharded(job: Job, count: int,
                      after_ready: Callable[[Callable[[str, str], None]], Any] | None = None,
                      kits: Path | None = None) -> RunResult:
    """Run ``job`` over ``count`` shards, each a task serving its nodes on loopback TCP
    (TLS with the kits of a project whose nodes are the shards, if ``kits``)."""
    split = split_nodes(job.network.node_ids, count)
    run_id = uuid.uuid4().hex
    if kits is not None:
        provision(Project("shards", CONTROLLER_NAME, tuple(split), ()), kits)

    def transport(name: str, **options: Any) -> TcpTransport:
        return TcpTransport(name, "127.0.0.1:0", run_id=run_id, carriers=shard_of(split),
                            coalesce=True, tls=kits and TlsConfig.from_dir(kits, name),
                            **options)

    async def launch(address: str, lost: Callable[[str, str], None]) -> None:
        async with anyio.create_task_group() as group:
            for shard, nodes in split.items():
                carrier = transport(shard)
                carrier.guard = shard_guard(split)
                group.start_soon(serve_shard, shard, address, carrier,
                                 lambda mine=frozenset(nodes): {
                                     n: ex for n, ex in build_executors(job).items()
                                     if n in mine})
            if after_ready is not None:
                await after_ready(lost)

    return await serve_shards(job.config, transport(CONTROLLER_NAME, reconnect_window=0.0),
                              split, launch, join_timeout=20.0)


def test_split_nodes_makes_consecutive_blocks_of_near_equal_size() -> None:
    shards = split_nodes([f"n{i}" for i in range(10)], 4)
    assert shards == {"shard-0": ["n0", "n1", "n2"], "shard-1": ["n3", "n4", "n5"],
                      "shard-2": ["n6", "n7"], "shard-3": ["n8", "n9"]}
    with pytest.raises(ValueError, match="cannot split 3 nodes into 4 shards"):
        split_nodes(["a", "b", "c"], 4)



def histories(results: dict) -> dict:
    """Each node's value history (the bytes it sent depend on how its shard carries them)."""
    return {node: result["value_history"] for node, result in results.items()}

@pytest.mark.timeout(30)
@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
async def test_a_sharded_consensus_run_gives_the_in_memory_trajectories(
        tls: bool, tmp_path: Path) -> None:
    job = consensus_job()
    sharded = await run_sharded(job, 3, kits=tmp_path if tls else None)
    in_memory = await peerflow.run(job.config, build_executors(job))
    assert sharded.ok, sharded.reason
    assert histories(sharded.results) == histories(in_memory.results)


@pytest.mark.timeout(30)
async def test_a_lost_shard_aborts_the_run_naming_its_nodes() -> None:
    job = consensus_job(iterations=10**6)

    async def kill_shard_1(lost: Callable[[str, str], None]) -> None:
        await anyio.sleep(0.5)
        lost("shard-1", "its process died")

    with anyio.fail_after(10):
        result = await run_sharded(job, 3, kill_shard_1)
    assert result.status == "aborted"
    assert "lost shard 'shard-1' hosting nodes [site-5, site-6, site-7, site-8]" \
        in str(result.reason), result.reason
    assert "its process died" in str(result.reason)
    assert result.node == "site-5"
