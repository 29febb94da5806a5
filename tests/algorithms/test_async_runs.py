"""Asynchronous runs: pairwise gossip and robust push-sum keep the network's sum at every
step under delay and loss, reach the true average, replay a seeded schedule exactly as
a plain numpy simulation does, and still name a node that fails or gets stuck."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import numpy as np
import pytest

import peerflow
from peerflow import Config, Network
from peerflow.actors import CONTROLLER_NAME, RunResult, TickSchedule
from peerflow.algorithms import (
    AsyncPushSumExecutor,
    ConsensusExecutor,
    GossipExecutor,
    gossip_in_flight,
    gossip_init,
    in_flight,
    metropolis_hastings,
    push_sum_init,
    random_directed,
    ring,
)
from peerflow.transport import EmulatedTransport, Link, MemoryTransport

RING = metropolis_hastings(ring(6))
DIRECTED = metropolis_hastings(random_directed(6, seed=1))
X0 = np.random.default_rng(7).normal(size=6)
NETWORKS = {GossipExecutor: RING, AsyncPushSumExecutor: DIRECTED}


def ins(network: Network) -> dict[str, list[str]]:
    return {node.id: sorted(n.id for n in node.neighbors) for node in network.nodes}


def outs(network: Network) -> dict[str, list[str]]:
    inn = ins(network)
    return {n: [m for m in network.node_ids if n in inn[m]] for n in network.node_ids}


def network_sum(kind: type, states: dict[str, Any], network: Network) -> float:
    """The nodes' values plus what is on the way."""
    if kind is GossipExecutor:
        return sum(s.x for s in states.values()) + gossip_in_flight(states)
    return sum(s.x for s in states.values()) + in_flight(states, outs(network))[0]


async def averaged(kind: type, transport: Any, iterations: int = 300, check_sum: bool = True,
                   **options: Any) -> tuple[RunResult, dict[str, Any], list[float]]:
    """Run ``kind`` on its network from X0; the sum's drift after every tick of any node."""
    network, drift = NETWORKS[kind], []
    init = gossip_init if kind is GossipExecutor else push_sum_init
    executors: dict[str, Any] = {}

    def on_tick(node: str, tick: int, state: Any) -> None:
        states = {n: ex.state or init(float(x)) for (n, ex), x in zip(executors.items(), X0,
                                                                      strict=True)}
        drift.append(abs(network_sum(kind, states, network) - X0.sum()))

    for node, x in zip(network.node_ids, X0, strict=True):
        executors[node] = kind(float(x), on_tick=on_tick if check_sum else None, **options)
    with anyio.fail_after(60):
        result = await peerflow.run(Config(network, {"iterations": iterations}), executors,
                                    transport)
    return result, executors, drift


def lossy(link: Link) -> EmulatedTransport:
    return EmulatedTransport(MemoryTransport(strict=True), link, exempt=[CONTROLLER_NAME], seed=3)


@pytest.mark.parametrize("kind", [GossipExecutor, AsyncPushSumExecutor])
async def test_the_sum_is_kept_at_every_step_under_delay_and_loss_and_the_average_reached(
        kind: type) -> None:
    link = Link(latency=0.001, jitter=0.003, drop=0.05, loss="drop")
    result, executors, drift = await averaged(kind, lossy(link), iterations=400)
    assert result.ok, result.reason
    assert len(drift) >= 6 * 400 and max(drift) < 1e-12
    final = np.array([ex.current_value for ex in executors.values()])
    assert np.abs(final - X0.mean()).max() < 1e-5


@pytest.mark.parametrize("kind", [GossipExecutor, AsyncPushSumExecutor])
async def test_a_free_running_asynchronous_run_keeps_the_sum_on_every_transport(
        kind: type, transport: str) -> None:
    result, executors, drift = await averaged(kind, transport, iterations=150, max_wait=0.01)
    assert result.ok, result.reason
    assert max(drift) < 1e-12
    final = np.array([ex.current_value for ex in executors.values()])
    assert np.abs(final - X0.mean()).max() < 1e-6


async def test_the_lossy_run_that_aborts_synchronously_completes_asynchronously() -> None:
    link = Link(drop=0.001, loss="drop")
    executors = {n: ConsensusExecutor(float(x), sync_timeout=0.5)
                 for n, x in zip(RING.node_ids, X0, strict=True)}
    with anyio.fail_after(30):
        sync = await peerflow.run(Config(RING, {"iterations": 300}), executors, lossy(link))
    assert sync.status == "aborted" and "no value from" in (sync.reason or "")
    for kind in (GossipExecutor, AsyncPushSumExecutor):
        transport = lossy(link)
        result, asynchronous, _ = await averaged(kind, transport, iterations=300,
                                                 check_sum=False, sync_timeout=0.5)
        assert result.ok, result.reason
        assert transport.stats.dropped > 0
        final = np.array([ex.current_value for ex in asynchronous.values()])
        assert np.abs(final - X0.mean()).max() < 1e-9


def push_sum_numpy(schedule: TickSchedule, network: Network, x0: np.ndarray
                   ) -> dict[str, list[float]]:
    """Robust push-sum on ``schedule``, centrally: the estimate after each wake, then the
    one after taking what is visible at the end."""
    ids, inn, out = network.node_ids, ins(network), outs(network)
    x, w = dict(zip(ids, x0, strict=True)), dict.fromkeys(ids, 1.0)
    sent, last_sent = {}, dict.fromkeys(ids, (0.0, 0.0))
    taken = {(n, s): (-1, 0.0, 0.0) for n in ids for s in inn[n]}
    history = {n: [x[n]] for n in ids}

    def absorb(node: str, tick: int) -> bool:
        news = False
        for s in inn[node]:
            seen, tx, tw = taken[node, s]
            v = schedule.visible(s, node, tick)
            if v is not None and v > seen:
                sx, sw = sent[s, v]
                x[node], w[node] = x[node] + (sx - tx), w[node] + (sw - tw)
                taken[node, s], news = (v, sx, sw), True
        return news

    for tick, node in enumerate(schedule.owners):
        news = absorb(node, tick)
        d, (sx, sw) = len(out[node]), last_sent[node]
        if news or tick == schedule.wakes(node)[0]:  # a node pushes only what came in
            nx, nw = sx + x[node] * (1.0 / (d + 1)), sw + w[node] * (1.0 / (d + 1))
            x[node], w[node] = x[node] - d * (nx - sx), w[node] - d * (nw - sw)
            last_sent[node] = (nx, nw)
        sent[node, tick] = last_sent[node]
        history[node].append(x[node] / w[node])
    for node in ids:
        absorb(node, schedule.ticks)
        history[node].append(x[node] / w[node])
    return history


def gossip_numpy(schedule: TickSchedule, network: Network, x0: np.ndarray
                 ) -> dict[str, list[float]]:
    """Pairwise gossip on ``schedule``, centrally, message for message."""
    ids, nbrs = network.node_ids, ins(network)
    x = dict(zip(ids, x0, strict=True))
    moved: dict[tuple[str, str], float] = {}
    taken: dict[tuple[str, str], tuple[int, float | None]] = {}
    answered: dict[tuple[str, str], int] = {}
    asked, offers, waited = dict.fromkeys(ids), dict.fromkeys(ids, 0), dict.fromkeys(ids, 0)
    sent: dict[tuple[str, str, int], tuple[float, int, float | None, int]] = {}
    history = {n: [x[n]] for n in ids}

    def news(node: str, tick: int) -> dict[str, tuple[float, int, float | None, int]]:
        visible = {s: schedule.visible(s, node, tick) for s in nbrs[node]}
        return {s: sent[s, node, v] for s, v in visible.items()
                if v is not None and v > taken.get((node, s), (-1, None))[0]}

    def absorb(node: str, tick: int, new: dict[str, Any]) -> None:
        for s, (m, ans, _, _) in sorted(new.items()):
            before = taken.get((node, s), (-1, None))[1]
            x[node] = x[node] + (m if before is None else m - before)
            taken[node, s] = (schedule.visible(s, node, tick), m)
            if asked[node] == s and ans >= offers[node]:
                asked[node] = None

    for tick, node in enumerate(schedule.owners):
        new = news(node, tick)
        absorb(node, tick, new)
        for s, (_, _, offer, number) in sorted(new.items()):
            if offer is None or number <= answered.get((node, s), 0):
                continue
            if asked[node] == s:
                if node < s:
                    continue
                asked[node] = None
            half, old = (x[node] - offer) / 2, moved.get((node, s))
            total = half if old is None else old + half
            x[node] -= total if old is None else total - old
            moved[node, s], answered[node, s] = total, number
        if asked[node] is not None and waited[node] < 10:
            waited[node] += 1
        else:
            partner = schedule.choice(node, tick, nbrs[node])
            asked[node], offers[node], waited[node] = partner, offers[node] + 1, 0
        for n in nbrs[node]:
            sent[node, n, tick] = (moved.get((node, n), 0.0), answered.get((node, n), 0),
                                   x[node] if asked[node] == n else None, offers[node])
        history[node].append(x[node])
    for node in ids:
        absorb(node, schedule.ticks, news(node, schedule.ticks))
        history[node].append(x[node])
    return history


REFERENCES: dict[type, Callable[[TickSchedule, Network, np.ndarray], dict[str, list[float]]]] = {
    GossipExecutor: gossip_numpy, AsyncPushSumExecutor: push_sum_numpy}


@pytest.mark.parametrize("kind", [GossipExecutor, AsyncPushSumExecutor])
async def test_a_scheduled_run_equals_a_plain_numpy_simulation_of_its_schedule(
        kind: type, transport: str) -> None:
    network = NETWORKS[kind]
    schedule = TickSchedule(network.node_ids, 600, seed=5, speeds={"site-2": 5.0}, max_delay=4,
                        drop=0.1)
    result, executors, drift = await averaged(kind, transport, iterations=0, schedule=schedule)
    assert result.ok, result.reason
    reference = REFERENCES[kind](schedule, network, X0)
    for node, executor in executors.items():
        assert len(executor.value_history) == len(schedule.wakes(node)) + 2
        np.testing.assert_allclose(executor.value_history, reference[node], rtol=0, atol=1e-12)
    assert max(drift) < 1e-12
    assert np.abs(np.array([h[-1] for h in reference.values()]) - X0.mean()).max() < 1e-6


class Failing(GossipExecutor):
    """Raises in its tick 5, or hangs there."""

    def __init__(self, value: float, hang: bool, **options: Any) -> None:
        super().__init__(value, **options)
        self.hang = hang

    async def read(self, tick: int) -> Any:
        if tick == 5 and self.id == "site-3":
            if self.hang:
                await anyio.sleep_forever()
            raise RuntimeError("out of memory")
        return await super().read(tick)


@pytest.mark.parametrize("hang", [False, True])
async def test_a_node_that_fails_or_hangs_is_named(hang: bool, transport: str) -> None:
    executors = {n: Failing(float(x), hang, sync_timeout=1.0, max_wait=0.005)
                 for n, x in zip(RING.node_ids, X0, strict=True)}
    with anyio.fail_after(30):
        result = await peerflow.run(Config(RING, {"iterations": 50}), executors, transport)
    assert result.status == "aborted" and result.node == "site-3", result.reason
    if not hang:
        assert "out of memory" in (result.reason or "")


class Confused(GossipExecutor):
    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        await self.exchange(1.0, 0)
        return {}


async def test_an_asynchronous_node_that_calls_exchange_is_told_to_read_and_post() -> None:
    executors = {n: Confused(float(x)) for n, x in zip(RING.node_ids, X0, strict=True)}
    with anyio.fail_after(30):
        result = await peerflow.run(Config(RING, {"iterations": 5}), executors)
    assert result.status == "aborted" and "read() and sends with post()" in (result.reason or "")
