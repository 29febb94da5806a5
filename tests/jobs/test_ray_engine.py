"""The Ray engine on a local Ray cluster of two nodes (a head and a worker) that the
module starts: 4 shard actors give the in-memory trajectories; a killed shard aborts
the run naming its nodes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'peerflow[ray]')")

import peerflow  # noqa: E402
from peerflow.jobs import Job, build_executors, build_network, run_on_ray  # noqa: E402

STORE = 80 * 2**20  # bytes of object store per Ray node: the jobs' specs are small



def histories(results: dict) -> dict:
    """Each node's value history (the bytes it sent depend on how its shard carries them)."""
    return {node: result["value_history"] for node, result in results.items()}

@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "object_store_memory": STORE, "include_dashboard": False})
    cluster.add_node(num_cpus=2, object_store_memory=STORE)
    ray.init(address=cluster.address, logging_level="WARNING")
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def in_memory(job: Job) -> peerflow.RunResult:
    return peerflow.simulate(job.config, build_executors(job))


@pytest.mark.timeout(300)
def test_four_shards_give_the_in_memory_consensus_trajectories(ray_cluster: Any) -> None:
    job = Job("consensus", 40, 0, 10.0, build_network("random", 16, 1, None))
    result = anyio.run(lambda: run_on_ray(job, shards=4))
    assert result.ok, result.reason
    assert histories(result.results) == histories(in_memory(job).results)


@pytest.mark.timeout(300)
def test_four_shards_give_the_in_memory_learning_trajectories(ray_cluster: Any) -> None:
    network = build_network("ring", 8, 0, None)
    job = Job.learning("gt", network, "least-squares", 0, 30.0, iterations=15)
    result = anyio.run(lambda: run_on_ray(job, shards=4))
    reference = in_memory(job)
    assert result.ok, result.reason
    for node, expected in reference.results.items():
        got = result.results[node]
        assert {k: v.tolist() for k, v in got["params"].items()} == \
            {k: v.tolist() for k, v in expected["params"].items()}
        losses = [name for name in expected if name.endswith("loss_sequence")]
        assert losses
        for name in losses:
            assert got[name]["loss"] == expected[name]["loss"]


@pytest.mark.timeout(300)
def test_a_killed_shard_aborts_the_run_naming_its_nodes(ray_cluster: Any) -> None:
    sync_timeout = 20.0
    job = Job("consensus", 10**6, 0, sync_timeout, build_network("ring", 8, 0, None))
    killed: list[float] = []

    def kill_shard_2() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                     if a["name"].endswith("-shard-2")]
            if names:
                time.sleep(1.0)  # well into the run
                ray.kill(ray.get_actor(names[0]))
                killed.append(time.monotonic())
                return
            time.sleep(0.1)

    async def main() -> peerflow.RunResult:
        async with anyio.create_task_group() as group:
            group.start_soon(anyio.to_thread.run_sync, kill_shard_2)
            return await run_on_ray(job, shards=4)

    result = anyio.run(main)
    assert killed, "shard-2's actor was never found"
    assert result.status == "aborted"
    assert "shard 'shard-2' hosting nodes [site-5, site-6]" in str(result.reason), result.reason
    assert time.monotonic() - killed[0] < sync_timeout
