"""The network-emulation wrapper: delays, bandwidth, loss and order, link by link."""

from __future__ import annotations

import anyio
import numpy as np
import pytest

import peerflow
from peerflow.actors import CONTROLLER_NAME, Config
from peerflow.algorithms import (
    ConsensusExecutor,
    metropolis_hastings,
    mixing_matrix,
    random_connected,
    ring,
)
from peerflow.transport import (
    EmulatedTransport,
    Envelope,
    Link,
    MemoryTransport,
    new_message_id,
)


def tell(sender: str, recipient: str, body: object, iteration: int = 0) -> Envelope:
    return Envelope("tell", sender, recipient, "value", body, iteration, "run", new_message_id())


class Arrivals:
    """Records what an endpoint receives and when (loop time)."""

    def __init__(self) -> None:
        self.items: list[tuple[float, Envelope]] = []

    def __call__(self, envelope: Envelope) -> None:
        self.items.append((anyio.current_time(), envelope))

    async def wait(self, count: int, timeout: float = 5) -> list[tuple[float, Envelope]]:
        with anyio.fail_after(timeout):
            while len(self.items) < count:
                await anyio.sleep(0.001)
        return self.items


def emulated(default: Link | None = None, **options: object) -> EmulatedTransport:
    return EmulatedTransport(MemoryTransport(strict=True), default, **options)  # type: ignore[arg-type]


async def test_an_instant_link_delivers_during_send() -> None:
    async with emulated() as transport:
        inbox = Arrivals()
        transport.register("b", inbox)
        transport.send(tell("a", "b", 1.5))
        assert [e.body for _, e in inbox.items] == [1.5]


async def test_latency_delays_delivery_without_blocking_the_sender() -> None:
    async with emulated(Link(latency=0.05)) as transport:
        inbox = Arrivals()
        transport.register("b", inbox)
        sent_at = anyio.current_time()
        transport.send(tell("a", "b", 1))
        assert anyio.current_time() - sent_at < 0.01 and inbox.items == []
        ((arrived, _),) = await inbox.wait(1)
    assert 0.05 <= arrived - sent_at < 0.5


async def test_links_named_explicitly_override_the_default() -> None:
    links = {("a", "slow"): Link(latency=0.1)}
    async with emulated(Link(), links=links) as transport:
        fast, slow = Arrivals(), Arrivals()
        transport.register("fast", fast)
        transport.register("slow", slow)
        transport.send(tell("a", "slow", 1))
        transport.send(tell("a", "fast", 2))
        assert len(fast.items) == 1 and slow.items == []
        await slow.wait(1)


async def test_a_link_keeps_its_order_whatever_the_jitter() -> None:
    async with emulated(Link(latency=0.001, jitter=0.02), seed=3) as transport:
        inbox = Arrivals()
        transport.register("b", inbox)
        for i in range(50):
            transport.send(tell("a", "b", i, iteration=i))
        got = await inbox.wait(50)
    assert [e.body for _, e in got] == list(range(50))


async def test_bandwidth_serialises_a_links_envelopes() -> None:
    body = np.zeros(25_000, dtype=np.float64)  # 200 kB: 20 ms each at 10 MB/s
    async with emulated(Link(bandwidth=10e6)) as transport:
        inbox = Arrivals()
        transport.register("b", inbox)
        start = anyio.current_time()
        for _ in range(3):
            transport.send(tell("a", "b", body))
        got = await inbox.wait(3)
    assert got[-1][0] - start >= 0.06
    np.testing.assert_array_equal(got[-1][1].body, body)


async def test_true_losses_are_seeded_and_counted_per_link() -> None:
    counts = []
    for _ in range(2):
        async with emulated(Link(drop=0.3, loss="drop"), seed=11) as transport:
            inbox = Arrivals()
            transport.register("b", inbox)
            for i in range(200):
                transport.send(tell("a", "b", i))
            counts.append(len(inbox.items))
            assert transport.stats.dropped == 200 - len(inbox.items)
            assert transport.stats.dropped_by_link == {("a", "b"): transport.stats.dropped}
    assert counts[0] == counts[1] and 100 < counts[0] < 180


async def test_by_default_a_lost_envelope_is_retransmitted_late_and_in_order() -> None:
    async with emulated(Link(drop=0.3, rto=0.005), seed=11) as transport:
        inbox = Arrivals()
        transport.register("b", inbox)
        sent_at = anyio.current_time()
        for i in range(200):
            transport.send(tell("a", "b", i))
        got = await inbox.wait(200)
    assert [e.body for _, e in got] == list(range(200))
    assert transport.stats.dropped == 0 and transport.stats.retransmitted > 40
    assert got[-1][0] - sent_at >= 0.005


async def test_a_link_that_loses_everything_gives_up_after_its_retransmissions() -> None:
    async with emulated(Link(drop=1.0, rto=0.001)) as transport:
        inbox = Arrivals()
        transport.register("b", inbox)
        transport.send(tell("a", "b", 1))
        await anyio.sleep(0.01)
    assert inbox.items == [] and transport.stats.dropped_by_link == {("a", "b"): 1}


async def test_exempt_actors_pass_untouched() -> None:
    async with emulated(Link(drop=1.0), exempt={"controller"}) as transport:
        inbox = Arrivals()
        transport.register("controller", inbox)
        transport.register("b", inbox)
        transport.send(tell("a", "controller", 1))
        transport.send(tell("a", "b", 2))
    assert [e.body for _, e in inbox.items] == [1]


async def test_undeliverable_envelopes_reach_the_dead_letter_callback() -> None:
    letters: list[tuple[Envelope, str]] = []
    async with emulated(Link(latency=0.01)) as transport:
        transport.on_dead_letter = lambda envelope, reason: letters.append((envelope, reason))
        transport.send(tell("a", "nobody", 1))
        with anyio.fail_after(5):
            while not letters:
                await anyio.sleep(0.005)
    assert "nobody" in letters[0][1]


async def test_closing_discards_what_is_due_and_refuses_new_sends() -> None:
    transport = emulated(Link(latency=10))
    async with transport:
        inbox = Arrivals()
        transport.register("b", inbox)
        transport.send(tell("a", "b", 1))
    assert inbox.items == []
    with pytest.raises(anyio.ClosedResourceError):
        transport.send(tell("a", "b", 2))


def test_invalid_links_are_refused() -> None:
    for bad in ({"latency": -1}, {"bandwidth": 0}, {"drop": 1.5}, {"rto": -1},
                {"loss": "lose"}):
        with pytest.raises(ValueError):
            Link(**bad)  # type: ignore[arg-type]


async def test_consensus_over_slow_links_gives_the_same_values() -> None:
    network = metropolis_hastings(ring(5))
    runs = []
    for link in (Link(), Link(latency=0.002, jitter=0.002)):
        executors = {n: ConsensusExecutor(float(i)) for i, n in enumerate(network.node_ids)}
        transport = emulated(link, exempt={CONTROLLER_NAME})
        with anyio.fail_after(30):
            result = await peerflow.run(Config(network, {"iterations": 20}), executors,
                                        transport)
        assert result.ok, result.reason
        runs.append([executors[n].value_history for n in network.node_ids])
    assert runs[0] == runs[1]


async def test_a_lost_value_aborts_the_run_at_the_receivers_sync_timeout() -> None:
    network = metropolis_hastings(ring(4))
    executors = {n: ConsensusExecutor(float(i), sync_timeout=0.3)
                 for i, n in enumerate(network.node_ids)}
    transport = emulated(Link(), links={("site-2", "site-3"): Link(drop=1.0)},
                         exempt={CONTROLLER_NAME})
    start = anyio.current_time()
    with anyio.fail_after(10):
        result = await peerflow.run(Config(network, {"iterations": 50}), executors, transport)
    assert result.status == "aborted" and anyio.current_time() - start < 0.3 + 2.0
    assert "no value from" in (result.reason or "") and result.iteration is not None
    assert set(transport.stats.dropped_by_link) == {("site-2", "site-3")}


def lossy_consensus(loss: str) -> tuple[Config, dict[str, ConsensusExecutor], EmulatedTransport]:
    """6 nodes, 20 iterations, drop 0.001: a seed under which two values are lost."""
    network = metropolis_hastings(random_connected(6, seed=0))
    executors = {n: ConsensusExecutor(float(i), sync_timeout=1.0)
                 for i, n in enumerate(network.node_ids)}
    transport = emulated(Link(drop=0.001, loss=loss), exempt={CONTROLLER_NAME}, seed=5)  # type: ignore[arg-type]
    return Config(network, {"iterations": 20}), executors, transport


async def test_a_synchronous_run_over_a_lossy_link_completes_with_the_exact_result() -> None:
    config, executors, transport = lossy_consensus("retransmit")
    with anyio.fail_after(20):
        result = await peerflow.run(config, executors, transport)
    assert result.ok, result.reason
    assert transport.stats.retransmitted > 0 and transport.stats.dropped == 0
    w, ids = mixing_matrix(config.network)
    x = np.arange(len(ids), dtype=float)
    for _ in range(20):
        x = w @ x
    np.testing.assert_allclose([executors[n].current_value for n in ids], x, rtol=0,
                               atol=1e-12)


async def test_with_true_loss_the_same_run_aborts_naming_the_missing_value() -> None:
    config, executors, transport = lossy_consensus("drop")
    with anyio.fail_after(20):
        result = await peerflow.run(config, executors, transport)
    assert result.status == "aborted" and "no value from" in (result.reason or "")
    assert transport.stats.dropped > 0
