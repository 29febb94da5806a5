"""The Ray engine: consensus per node-iteration in one process and over Ray shards, what
crosses a shard boundary, and the largest job the Ray engine runs within a minute.

- ``boundary``: one consensus job on a random connected graph (100,000 nodes; quick:
  10,000) run in one process (memory transport), then with its nodes on 2 and 4 Ray
  shard actors (quick: 1, 2 and 4) (``peerflow.jobs.run_on_ray``). Per run: seconds of the run phase
  per node-iteration, and the value envelopes that crossed a shard boundary per
  iteration with their bytes on the wire (each such envelope encoded as TCP sends it).
  The cost of a boundary is the shard-seconds the sharded run spends beyond the
  one-process run, per cross-shard envelope: ``(shards * run - one process run) /
  cross-shard envelopes``; it is what a boundary costs if the shards had a CPU each
  (given when at least a tenth of the envelopes cross).
- ``largest``: node counts in increasing order, 10 iterations each, one shard per CPU
  of the cluster, until a run (placement, actor start, building the executors,
  config and run: the wall time of ``run_on_ray``) misses the minute.

Ray: ``RAY_ADDRESS`` if set, else a local Ray with a CPU per core and at least four
(logical ones: on a smaller machine the shards share the cores, as the report says).
"""

from __future__ import annotations

import os
import time
from typing import Any

import peerflow
from peerflow.actors import shard_of, split_nodes
from peerflow.jobs import (
    Job,
    JobError,
    build_executors,
    build_network,
    connect_ray,
    import_ray,
    run_on_ray,
)
from peerflow.transport import Envelope, encode, frame_size, new_message_id, run_loop

BUDGET_S = 60.0
ITERATIONS = 10
LOCAL_CPUS = 4


def section(quick: bool) -> dict[str, Any]:
    """Both measurements, or why they were skipped."""
    try:
        owned = connect_ray(None, LOCAL_CPUS)
    except JobError as exc:
        return {"skipped": str(exc)}
    ray = import_ray()
    try:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        results = {"cpus": cpus, "machine_cpus": os.cpu_count(),
                   "boundary": boundary(10_000, (1, 2, 4)) if quick else
                   boundary(100_000, (2, 4)),
                   "largest": largest([1000, 3000, 10_000, *(() if quick else
                                                             (30_000, 100_000, 200_000))])}
    finally:
        if owned:
            ray.shutdown()
    return {**results, "markdown": markdown(results)}


def consensus_job(nodes: int, iterations: int = ITERATIONS, topology: str = "random") -> Job:
    return Job("consensus", iterations, 0, 60.0, build_network(topology, nodes, 0, None))


def boundary(nodes: int, shard_counts: tuple[int, ...],
             topology: str = "random") -> list[dict[str, Any]]:
    """One process, then each shard count, on one job."""
    job = consensus_job(nodes, topology=topology)
    rows = [_row(job, None, peerflow.simulate(job.config, build_executors(job)), None)]
    for shards in shard_counts:
        started = time.perf_counter()
        result = run_loop(lambda s=shards: run_on_ray(job, shards=s))
        rows.append(_row(job, shards, result, time.perf_counter() - started))
    alone, messages = rows[0]["run_s"], sum(len(node.neighbors) for node in job.network.nodes)
    for row in rows[1:]:  # a few crossings (a ring's) leave the extra time to other causes
        if row["ok"] and row["cross_messages_per_iteration"] >= messages / 10:
            extra = row["shards"] * row["run_s"] - alone
            row["boundary_us_per_message"] = 1e6 * extra / (
                row["cross_messages_per_iteration"] * job.iterations)
    return rows


def _row(job: Job, shards: int | None, result: peerflow.RunResult,
         wall: float | None) -> dict[str, Any]:
    nodes, iterations = len(job.network.nodes), job.iterations
    run_s = result.timings.get("run", float("nan"))
    crossing = cross_shard(job, shards) if shards else (0, 0)
    return {"engine": "one process" if shards is None else "ray", "shards": shards,
            "nodes": nodes, "iterations": iterations, "ok": result.ok,
            "reason": result.reason, "config_s": result.timings.get("config"),
            "run_s": run_s, "wall_s": wall if wall is not None else result.wall_time,
            "us_per_node_iteration": 1e6 * run_s / (nodes * iterations),
            "cross_messages_per_iteration": crossing[0],
            "cross_bytes_per_iteration": crossing[1]}


def cross_shard(job: Job, shards: int) -> tuple[int, int]:
    """The value envelopes an iteration sends across shard boundaries, and their bytes
    on the wire (each encoded as the TCP transport frames it, length prefix included)."""
    owner = shard_of(split_nodes(job.network.node_ids, shards))
    run, count, size = "0" * 32, 0, 0
    for node in job.network.nodes:
        for neighbour in node.neighbors:  # values flow neighbour -> node
            if owner[neighbour.id] != owner[node.id]:
                envelope = Envelope("tell", neighbour.id, node.id, "value", 0.5,
                                    job.iterations - 1, run, new_message_id())
                count += 1
                size += frame_size(encode(envelope)) + 4
    return count, size


def largest(counts: list[int]) -> dict[str, Any]:
    """Try each node count in turn on the Ray engine; stop at the first that misses the minute."""
    rows: list[dict[str, Any]] = []
    for nodes in counts:
        job = consensus_job(nodes)
        started = time.perf_counter()
        result = run_loop(lambda j=job: run_on_ray(j))
        wall = time.perf_counter() - started
        rows.append({"nodes": nodes, "ok": result.ok, "reason": result.reason, "wall_s": wall,
                     "run_s": result.timings.get("run"),
                     "within_budget": result.ok and wall <= BUDGET_S})
        if not rows[-1]["within_budget"]:
            break
    done = [row["nodes"] for row in rows if row["within_budget"]]
    return {"budget_s": BUDGET_S, "iterations": ITERATIONS, "rows": rows,
            "largest": done[-1] if done else None}


def markdown(results: dict[str, Any]) -> str:
    """The two tables."""
    lines = [f"Ray cluster: {results['cpus']} CPUs (this machine: {results['machine_cpus']} "
             "cores).", "",
             "| engine | shards | nodes | run s | us per node-iteration | cross-shard "
             "envelopes / iteration | cross-shard bytes / iteration | boundary us / envelope |",
             "|---|---|---|---|---|---|---|---|"]
    for row in results["boundary"]:
        cost = row.get("boundary_us_per_message")
        lines.append(f"| {row['engine']} | {row['shards'] or '-'} | {row['nodes']} | "
                     f"{row['run_s']:.2f} | {row['us_per_node_iteration']:.2f} | "
                     f"{row['cross_messages_per_iteration']} | "
                     f"{row['cross_bytes_per_iteration']} | "
                     f"{'-' if cost is None else f'{cost:.1f}'} |")
    big = results["largest"]
    lines += ["", f"Largest consensus job the Ray engine completes ({big['iterations']} "
              f"iterations, one shard per CPU) within {big['budget_s']:g} s: "
              f"**{big['largest']}** nodes.", "", "| nodes | ok | wall s | run s |",
              "|---|---|---|---|"]
    lines += [f"| {r['nodes']} | {r['ok']} | {r['wall_s']:.1f} | {r['run_s'] or 0:.2f} |"
              for r in big["rows"]]
    return "\n".join(lines)
