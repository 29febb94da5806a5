"""The TCP transport's own promises: handshake, timeouts, backpressure, lost peers, runs."""

from __future__ import annotations

import inspect
from pathlib import Path

import anyio
import numpy as np
import pytest
import torch
from _net import RUN, open_net, tell

import peerflow
from peerflow import Config
from peerflow.algorithms import ConsensusExecutor, metropolis_hastings, random_connected
from peerflow.transport import (
    Envelope,
    Hello,
    NetworkTransport,
    PeerCongested,
    TcpTransport,
    Transport,
    TransportError,
    create_transport,
    encode_bytes,
    parse_address,
)
from peerflow.transport._frames import frame_prefix
from peerflow.transport._guard import is_loopback


async def test_a_connection_for_another_run_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    async with TcpTransport("a", run_id="run-A") as a, \
            TcpTransport("b", run_id="run-B", connect_timeout=1.0) as b:
        b.add_route("a", str(a.address))
        with anyio.fail_after(5), pytest.raises(TransportError, match="run 'run-B' refused"):
            await b.connect("a")
    assert "connection for run 'run-B' refused: this is run 'run-A'" in caplog.text


async def test_a_dialer_without_a_run_adopts_the_run_of_its_peer() -> None:
    async with TcpTransport("controller", run_id=RUN, joiners={"site-1"}) as c, \
            TcpTransport("site-1") as node:
        node.add_route("controller", str(c.address))
        with anyio.fail_after(5):
            await node.connect("controller")
        assert node.run_id == RUN


async def test_a_peer_that_connects_and_says_nothing_is_timed_out_and_dropped(
        caplog: pytest.LogCaptureFixture) -> None:
    async with TcpTransport("a", run_id=RUN, handshake_timeout=0.3) as a:
        address = parse_address(f"tcp://{a.address}")
        async with await anyio.connect_tcp(address.host, address.port) as silent:
            with anyio.fail_after(5), pytest.raises(anyio.EndOfStream):
                await silent.receive()  # the transport closes it
    assert "TimeoutError" in caplog.text and "dropped incoming connection" in caplog.text


async def test_an_envelope_whose_sender_is_not_the_connection_is_dropped(
        caplog: pytest.LogCaptureFixture) -> None:
    got: list[Envelope] = []
    async with open_net("tcp", ["a", "b"]) as net:
        net["b"].register("b", got.append)
        net["a"].send(tell("c", "b", "forged"))
        net["a"].send(tell("a/x", "b", "fine"))
        with anyio.fail_after(5):
            while not got:
                await anyio.sleep(0.01)
    assert [e.body for e in got] == ["fine"]
    assert "dropped tell 'value' from 'c' on the connection of 'a'" in caplog.text


async def test_a_slow_reader_makes_the_sender_refuse_tells_not_buffer_without_bound() -> None:
    chunk = np.zeros(1 << 20, dtype=np.uint8)
    async with open_net("tcp", ["a", "b"], max_queued=8 << 20) as net:
        delivered = []
        net["b"].register("b", delivered.append)
        net["a"].send(tell("a", "b", "hello"))
        with anyio.fail_after(5):
            while not delivered:
                await anyio.sleep(0.01)
        with pytest.raises(PeerCongested, match="peer 'b' is congested"):
            for i in range(200):  # no await: nothing is flushed, the queue only grows
                net["a"].send(tell("a", "b", chunk, iteration=i))
        assert net["a"]._net.peers["b"].backlog <= (8 << 20) + (1 << 20) + 4096  # noqa: SLF001
        net["a"].send(tell("a", "b", "abort", kind="abort"))  # control still queues


async def test_a_frame_right_behind_the_hello_is_delivered_not_swallowed_by_the_handshake(
        ) -> None:
    got: list[Envelope] = []
    async with TcpTransport("a", run_id=RUN) as a:
        a.register("a", got.append)
        address = parse_address(f"tcp://{a.address}")
        frame = encode_bytes(tell("x", "a", "right behind"))
        async with await anyio.connect_tcp(address.host, address.port) as raw:
            await raw.send(Hello("x", RUN, None).frame() + frame_prefix(len(frame)) + frame)
            with anyio.fail_after(5):
                while not got:
                    await anyio.sleep(0.01)
    assert [e.body for e in got] == ["right behind"]


async def test_writes_go_straight_out_and_a_paused_connection_queues_them_in_order() -> None:
    chunk = np.zeros(1 << 20, dtype=np.uint8)
    async with open_net("tcp", ["a", "b"]) as net:
        got: list[Envelope] = []
        net["b"].register("b", got.append)
        net["a"].send(tell("a", "b", "hello"))
        with anyio.fail_after(5):
            while not got:
                await anyio.sleep(0.01)
        peer = net["a"]._net.peers["b"]  # noqa: SLF001 - the write path is what is tested
        assert not peer.queue and not peer.link.conn.paused
        net["b"]._net.peers["a"].link.conn.transport.pause_reading()  # noqa: SLF001 - a slow reader
        with anyio.fail_after(5):
            for i in range(64):  # far more than the kernel buffers: the transport pauses
                net["a"].send(tell("a", "b", chunk, iteration=i))
                await anyio.sleep(0)
        assert peer.link.conn.paused and peer.queue
        net["b"]._net.peers["a"].link.conn.transport.resume_reading()  # noqa: SLF001
        with anyio.fail_after(10):
            while len(got) < 65:
                await anyio.sleep(0.01)
        assert [e.iteration for e in got[1:]] == list(range(64))
        assert not peer.queue and peer.backlog == 0


@pytest.mark.parametrize("kind", ["tcp", "tls"])
def test_over_uvloop_tensors_and_thousands_of_tells_arrive_and_nothing_stays_open(
        kind: str, kits: Path) -> None:
    big = np.random.default_rng(1).normal(size=3 << 20)  # 24 MB: spans many reads

    async def scenario() -> list[TcpTransport]:
        async with open_net(kind, ["a", "b"], kits) as net:
            got: list[Envelope] = []
            net["b"].register("b", got.append)
            net["a"].send(tell("a", "b", big))
            for i in range(3000):
                net["a"].send(tell("a", "b", i, iteration=i))
            with anyio.fail_after(20):
                while len(got) < 3001:
                    await anyio.sleep(0.01)
        np.testing.assert_array_equal(got[0].body, big)
        assert [e.body for e in got[1:]] == list(range(3000))
        return list(net.values())  # type: ignore[arg-type]

    transports = anyio.run(scenario, backend="asyncio", backend_options={"use_uvloop": True})
    assert all(not t._net.tracked for t in transports)  # noqa: SLF001


async def test_an_envelope_for_an_endpoint_that_closed_before_unregistering_is_a_dead_letter(
        ) -> None:
    def closed(envelope: Envelope) -> None:
        raise anyio.ClosedResourceError

    letters: list[str] = []
    async with open_net("tcp", ["a", "b"]) as net:
        net["b"].on_dead_letter = lambda envelope, reason: letters.append(reason)
        net["b"].register("b", closed)
        net["a"].send(tell("a", "b", 1))
        with anyio.fail_after(5):
            while not letters:
                await anyio.sleep(0.01)
    assert letters == ["endpoint 'b' is closed"]


async def test_losing_a_watched_peer_calls_on_peer_lost_after_the_window() -> None:
    lost: list[tuple[str, str]] = []
    async with TcpTransport("a", run_id=RUN, reconnect_window=0.3) as a:
        async with TcpTransport("b", run_id=RUN) as b:
            a.add_route("b", str(b.address), watch=True)
            a.on_peer_lost = lambda peer, why: lost.append((peer, why))
            with anyio.fail_after(5):
                await a.connect("b")
            b._listener.close()  # noqa: SLF001 - b cannot be dialed again
            for link in list(b._net.peers["a"].links):  # noqa: SLF001 - and breaks, no goodbye
                link.conn.abort()
        with anyio.fail_after(5):
            while not lost:
                await anyio.sleep(0.01)
    assert lost[0][0] == "b" and "within 0.3s" in lost[0][1]


def test_addresses_select_the_transport() -> None:
    assert str(parse_address("tcp://127.0.0.1:7000")) == "tcp://127.0.0.1:7000"
    assert parse_address("tls").port == 0
    assert isinstance(create_transport("tcp", name="x"), TcpTransport)
    with pytest.raises(ValueError, match="unknown transport 'udp://h:1'"):
        parse_address("udp://h:1")
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        parse_address("tcp://nohost")
    with pytest.raises(ValueError, match="needs a TLS kit"):
        create_transport("tls", name="x")


def consensus(transport: str, value: object) -> tuple[peerflow.RunResult, list[list[object]]]:
    network = metropolis_hastings(random_connected(7, seed=5))
    executors = {n: ConsensusExecutor(value if i == 0 else value * 0 + i, sync_timeout=5)
                 for i, n in enumerate(network.node_ids)}
    result = peerflow.simulate(Config(network, {"iterations": 60}), executors, transport)
    return result, [ex.value_history for ex in executors.values()]


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_consensus_over_the_network_has_the_in_memory_trajectory_exactly(transport: str) -> None:
    memory, expected = consensus("memory", 0.25)
    result, histories = consensus(transport, 0.25)
    assert memory.ok and result.ok, result.reason
    assert histories == expected
    _, tensors_memory = consensus("memory", torch.full((4,), 0.25, dtype=torch.float64))
    _, tensors = consensus(transport, torch.full((4,), 0.25, dtype=torch.float64))
    for got, want in zip(tensors, tensors_memory, strict=True):
        assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True))


def test_a_node_name_with_a_slash_cannot_run_over_tcp() -> None:
    with pytest.raises(peerflow.actors.ConfigError, match="node id 'a/b' is not a valid name"):
        peerflow.Network.from_dict({"nodes": [{"id": "a/b", "neighbors": []}]})


@pytest.mark.parametrize("algorithm", ["gt"])
def test_learning_over_tcp_and_tls_follows_the_in_memory_trajectory_exactly(
        algorithm: str) -> None:
    from peerflow.algorithms import LEARNING_EXECUTORS
    from peerflow.jobs import build_problem

    network = metropolis_hastings(random_connected(4, seed=2))
    task = build_problem("two-moons", 4, 0)
    losses = {}
    for transport in ("memory", "tcp", "tls"):
        executors = {n: LEARNING_EXECUTORS[algorithm](**task.node_kwargs(i), sync_timeout=10)
                     for i, n in enumerate(network.node_ids)}
        config = Config(network, {"iterations": 4, "stepsize": task.stepsize})
        result = peerflow.simulate(config, executors, transport)
        assert result.ok, result.reason
        losses[transport] = [[record.loss for record in ex.train_loss_sequence]
                             for ex in executors.values()]
    assert losses["tcp"] == losses["memory"] == losses["tls"]
    assert any(losses["memory"])


async def test_unfinished_frames_over_the_byte_bound_drop_the_connection_that_goes_over(
        caplog: pytest.LogCaptureFixture) -> None:
    async with TcpTransport("a", run_id=RUN, max_buffered=1 << 20) as a:
        address = parse_address(f"tcp://{a.address}")
        streams = []
        try:
            for name in ("x", "y"):
                streams.append(stream := await anyio.connect_tcp(address.host, address.port))
                await stream.send(Hello(name, RUN, None).frame() + frame_prefix(1 << 20)
                                  + bytes(700_000))
                with anyio.fail_after(5):
                    while name not in {c["peer"] for c in a.connections()} and \
                            "over the limit of 1048576" not in caplog.text:
                        await anyio.sleep(0.01)
            with anyio.fail_after(5):
                while len(a.connections()) > 1:
                    await anyio.sleep(0.01)
            assert [c["peer"] for c in a.connections()] == ["x"]
        finally:
            for stream in streams:
                await stream.aclose()
    assert "connection with 'y'" in caplog.text
    assert "unfinished frames hold 1400008 bytes, over the limit of 1048576" in caplog.text


async def test_handshakes_from_one_host_beyond_the_bound_are_closed_at_once(
        caplog: pytest.LogCaptureFixture) -> None:
    async with TcpTransport("a", run_id=RUN, max_pending=4) as a:
        address = parse_address(f"tcp://{a.address}")
        silent = [await anyio.connect_tcp(address.host, address.port) for _ in range(6)]
        try:
            with anyio.fail_after(3):
                while caplog.text.count("4 handshakes from 127.0.0.1 are under way") < 2:
                    await anyio.sleep(0.01)
                with pytest.raises(anyio.EndOfStream):
                    await silent[-1].receive()
        finally:
            for stream in silent:
                await stream.aclose()


def test_plain_tcp_without_a_secret_admits_loopback_peers_only() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.3.2.1", "::1", "[::1]", "::ffff:127.0.0.1"]))
    assert not any(map(is_loopback, ["192.0.2.7", "::ffff:192.0.2.7", "2001:db8::1", "?"]))
    bare = TcpTransport("a", run_id=RUN)
    assert "loopback peers only" in str(bare._net._refusal("192.0.2.7"))  # noqa: SLF001
    assert bare._net._refusal("127.0.0.1") is None  # noqa: SLF001
    assert TcpTransport("a", run_id=RUN, secret="s")._net._refusal("192.0.2.7") is None  # noqa: SLF001


def test_the_network_interface_is_a_public_abc_that_tcp_implements() -> None:
    assert inspect.isabstract(NetworkTransport)
    assert issubclass(NetworkTransport, Transport)
    assert issubclass(TcpTransport, NetworkTransport)
    assert not inspect.isabstract(TcpTransport)
