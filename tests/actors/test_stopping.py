"""A cancelled or aborted run stops every node within an iteration or two.

Cancellation reaches a task only while it waits on an unresolved future; a node
whose neighbours keep feeding it is rarely seen waiting, so before ``stop`` a
cancelled ring went on, each node until the stop spread to it hop by hop: the
nodes far from where it began ran hundreds of iterations more (minutes at
thousands of nodes).
"""

from __future__ import annotations

import asyncio

import anyio

import peerflow
from peerflow import Config
from peerflow.algorithms import ConsensusExecutor, metropolis_hastings, ring

NODES = 400
SPREAD = 20
"""How far apart the nodes' last iterations may be once stopped (a ring of 400 ran ~200 apart)."""


async def run_until(stop: str) -> list[int]:
    """Run a 400-node ring until every node is past iteration 3, stop it by ``stop``, and
    return the iteration each node reached."""
    network = metropolis_hastings(ring(NODES))
    executors = {node: ConsensusExecutor(float(i), sync_timeout=5.0)
                 for i, node in enumerate(network.node_ids)}
    config = Config(network, {"iterations": 10**6})

    async def stopper(scope: anyio.CancelScope) -> None:
        while min(ex.iteration or 0 for ex in executors.values()) < 3:
            await anyio.sleep(0.05)
        if stop == "abort":
            next(iter(executors.values())).panic("stopped by the test")
        else:
            scope.cancel()

    with anyio.fail_after(50):
        async with anyio.create_task_group() as group:
            group.start_soon(stopper, group.cancel_scope)
            await peerflow.run(config, executors)
            group.cancel_scope.cancel()
    return [ex.iteration or 0 for ex in executors.values()]


async def test_a_cancelled_run_stops_every_node_at_once() -> None:
    reached = await run_until("cancel")
    assert max(reached) - min(reached) <= SPREAD


async def test_an_aborted_run_stops_every_node_at_once() -> None:
    reached = await run_until("abort")
    assert max(reached) - min(reached) <= SPREAD


async def test_stopped_nodes_end_their_runs_on_their_own_without_an_answer() -> None:
    """``stop`` ends each node's run (RunStopped) rather than leaving it for a cancel:
    cancelling 10,000 waiting nodes took seconds."""
    network = metropolis_hastings(ring(200))
    executors = {node: ConsensusExecutor(float(i), sync_timeout=5.0)
                 for i, node in enumerate(network.node_ids)}
    outcome: list[int] = []

    async def stopper(scope: anyio.CancelScope) -> None:
        while min(ex.iteration or 0 for ex in executors.values()) < 3:
            await anyio.sleep(0.02)
        for executor in executors.values():
            executor.stop()
        for _ in range(100):  # the nodes' own tasks end; nothing is cancelled yet
            await anyio.sleep(0.02)
            if len(asyncio.all_tasks()) < 20:
                break
        outcome.append(len(asyncio.all_tasks()))
        scope.cancel()

    with anyio.fail_after(50):
        async with anyio.create_task_group() as group:
            group.start_soon(stopper, group.cancel_scope)
            await peerflow.run(Config(network, {"iterations": 10**6}), executors)
    assert outcome and outcome[0] < 20  # was 200 waiting nodes and more
