"""A node under attack: thousands of malformed inputs on its port while a run goes on.

Loop-driven with a seeded generator: random bytes, truncated handshakes and frames,
oversized length prefixes, and valid frames carrying malformed envelopes. Each
attack connection is dropped and logged; the run completes with the exact
trajectory of an undisturbed in-memory run. During the run the attackers know the
run id and (some of them) the join secret, yet none gets past the handshake: no
secret, not a neighbour, or a name that is connected already. A bare transport
that lets every secret holder in shows what becomes of the frames themselves.
"""

from __future__ import annotations

import logging
import struct

import anyio
import numpy as np
import pytest

import peerflow
from peerflow import Config
from peerflow.algorithms import ConsensusExecutor, metropolis_hastings, random_connected
from peerflow.transport import (
    DEFAULT_MAX_FRAME,
    Envelope,
    Hello,
    TcpTransport,
    encode_bytes,
    split_address,
)

INPUTS = 3000
ITERATIONS = 200
SECRET = "s3cret"


def attack(rng: np.random.Generator, index: int, run: str, target: str,
           secret: str | None = SECRET, name: str | None = None) -> bytes:
    """One attack connection's bytes (its hello as ``name``, by default its own)."""
    name = name or f"fuzzer-{index}"
    greeting = Hello(name, run, None, secret if index % 3 else None).frame()
    kind = index % 6
    if kind == 0:
        return rng.bytes(int(rng.integers(1, 300)))
    if kind == 1:
        return greeting[: int(rng.integers(1, len(greeting)))]
    if kind == 2:
        return greeting + struct.pack("<I", DEFAULT_MAX_FRAME + int(rng.integers(1, 1 << 20)))
    frame = encode_bytes(Envelope("tell", name, target, "value", rng.normal(size=3).tolist(),
                                  int(rng.integers(0, 5)), run, f"m{index}"))
    if kind == 3:  # a truncated frame
        return greeting + struct.pack("<I", len(frame)) + frame[: int(rng.integers(0, len(frame)))]
    if kind == 4:  # a valid frame around a malformed envelope
        body = bytearray(frame)
        for _ in range(int(rng.integers(1, 4))):
            body[int(rng.integers(4, len(body)))] = int(rng.integers(0, 256))
        body[4] = 0x85  # fixmap of 5: never the 10 fields of an envelope
        return greeting + struct.pack("<I", len(body)) + bytes(body)
    size = int(rng.integers(0, 1 << 20))  # random frame bodies, some cut short
    return greeting + struct.pack("<I", size) + rng.bytes(int(rng.integers(1, 300)))


async def send_attack(host: str, port: int, data: bytes, limiter: anyio.CapacityLimiter) -> None:
    async with limiter:
        await _send(host, port, data)


async def _send(host: str, port: int, data: bytes) -> None:
    try:
        async with await anyio.connect_tcp(host, port) as stream:
            await stream.send(data)
            with anyio.move_on_after(0.02):  # often the node has dropped us by then
                while await stream.receive():
                    pass
    except (OSError, anyio.BrokenResourceError, anyio.EndOfStream):
        pass


class Pausing(ConsensusExecutor):
    """Holds the run at mid-point until the attack is over, so it overlaps the run."""

    def __init__(self, value: float, resume: anyio.Event | None) -> None:
        super().__init__(value, sync_timeout=30)
        self.resume = resume

    async def exchange(self, value: object, iteration: int) -> dict[str, object]:
        if iteration == ITERATIONS // 2 and self.resume is not None:
            await self.resume.wait()
        return await super().exchange(value, iteration)


def job(resume: anyio.Event | None = None) -> tuple[Config, dict[str, ConsensusExecutor]]:
    network = metropolis_hastings(random_connected(5, seed=11))
    x0 = np.random.default_rng(3).uniform(size=5)
    executors = {n: Pausing(float(x), resume if i == 0 else None)
                 for i, (n, x) in enumerate(zip(network.node_ids, x0, strict=True))}
    return Config(network, {"iterations": ITERATIONS}), executors


async def test_a_node_under_attack_drops_each_bad_connection_and_the_run_is_exact(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "peerflow")
    config, undisturbed = job()
    assert (await peerflow.run(config, undisturbed)).ok
    resume = anyio.Event()
    config, executors = job(resume)
    target = config.network.node_ids[0]
    rng = np.random.default_rng(2026)
    outcome: list[peerflow.RunResult] = []

    async def run() -> None:
        outcome.append(await peerflow.run(config, executors, "tcp"))

    with anyio.fail_after(50):
        async with anyio.create_task_group() as group:
            group.start_soon(run)
            while executors[target]._runtime is None:  # noqa: SLF001 - wait for its listener
                await anyio.sleep(0.001)
            runtime = executors[target].runtime
            transport = runtime.transport
            neighbour = config.network.node(target).neighbors[0].id
            while neighbour not in {c["peer"] for c in transport.connections()}:  # type: ignore[attr-defined]
                await anyio.sleep(0.001)  # a secret holder who comes first is that neighbour
            host, port = split_address(str(transport.address))  # type: ignore[attr-defined]
            limiter = anyio.CapacityLimiter(32)
            async with anyio.create_task_group() as attackers:
                for index in range(INPUTS):
                    data = attack(rng, index, runtime.run_id, target,
                                  transport.secret,  # type: ignore[attr-defined]
                                  neighbour if index % 4 == 0 else None)
                    attackers.start_soon(send_attack, host, port, data, limiter)
            while len(drops(caplog)) < INPUTS:  # the node may still be working through them
                await anyio.sleep(0.01)
            resume.set()
    assert outcome[0].ok, outcome[0].reason
    assert outcome[0].timings["run"] > 0
    for node, executor in executors.items():
        assert executor.value_history == undisturbed[node].value_history
    dropped = drops(caplog)
    for refusal in ("over the limit", "did not give this run's join secret",
                    "may not connect here", f"node {neighbour!r} is connected already"):
        assert any(refusal in m for m in dropped), refusal
    assert not any("DecodeError" in m for m in dropped)  # no frame got past a handshake


async def test_frames_from_peers_past_the_handshake_only_cost_their_connection(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "peerflow")
    got: list[Envelope] = []
    rng = np.random.default_rng(7)
    inputs = 600
    async with TcpTransport("target", run_id="run-1", secret=SECRET) as target:
        target.register("target", got.append)
        host, port = split_address(str(target.address))
        limiter = anyio.CapacityLimiter(32)
        with anyio.fail_after(30):
            async with anyio.create_task_group() as attackers:
                for index in range(inputs):
                    attackers.start_soon(send_attack, host, port,
                                         attack(rng, index, "run-1", "target"), limiter)
            while len(drops(caplog)) < inputs - len(got):
                await anyio.sleep(0.01)
    dropped = drops(caplog)
    assert any("over the limit" in m for m in dropped)
    assert any("DecodeError" in m for m in dropped)


def drops(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The log lines of dropped connections (one per attack connection)."""
    return [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
