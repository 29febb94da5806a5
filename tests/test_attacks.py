"""Attacks on a live multi-process-style run (controller and nodes in one loop), over
plain TCP with a join secret and over mutual TLS.

Each attacker holds a credential of the project (the secret, or a kit) and tries
what its role does not allow: an admin reporting a panic, a node finishing a
non-neighbour or reporting another's panic, a second process under a connected
name, a stranger without the secret, a partial frame dropped, frames trickled a
byte at a time. The run is held at an iteration while they try, then resumes and
must complete.
"""

from __future__ import annotations

import contextlib
import gc
import os
import resource
import ssl
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import ByteStream
from anyio.streams.buffered import BufferedByteReceiveStream

from peerflow import Config
from peerflow.actors._cluster import query_status, serve_controller, serve_node
from peerflow.algorithms import ConsensusExecutor, metropolis_hastings, ring
from peerflow.transport import (
    Envelope,
    Hello,
    Project,
    TcpTransport,
    TlsConfig,
    TransportError,
    Welcome,
    new_message_id,
    provision,
    split_address,
)

NODES = ("site-1", "site-2", "site-3", "site-4")  # a ring: site-1 and site-3 are not neighbours
ADMINS = ("admin", "admin-2", "admin-3", "admin-4", "admin-5")
SECRET = "attack-test-secret"
HOLD = 5
KINDS = pytest.mark.parametrize("kind", ["tcp", "tls"])


@pytest.fixture(scope="module")
def kits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("kits")
    provision(Project("attacks", "controller", NODES, ADMINS), folder)
    return folder


def transport(kind: str, kits: Path, name: str, listen: str | None = "127.0.0.1:0",
              **options: Any) -> TcpTransport:
    """A transport holding ``name``'s credential: its kit (tls) or the secret (tcp)."""
    return TcpTransport(name, listen, tls=TlsConfig.from_dir(kits, name) if kind == "tls"
                        else None, secret=SECRET if kind == "tcp" else None, **options)


class Held(ConsensusExecutor):
    """Consensus that waits at iteration ``HOLD`` until the attacks are over."""

    def __init__(self, value: float, gate: anyio.Event) -> None:
        super().__init__(value, sync_timeout=30)
        self.gate = gate

    async def exchange(self, value: object, iteration: int) -> dict[str, object]:
        if iteration == HOLD:
            await self.gate.wait()
        return await super().exchange(value, iteration)


@dataclass
class Run:
    controller: TcpTransport
    nodes: dict[str, TcpTransport]
    outcomes: dict[str, Any] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def live_run(kind: str, kits: Path, **controller_options: Any) -> AsyncIterator[Run]:
    """A consensus run of four nodes, held at iteration ``HOLD`` while the body attacks;
    then it must complete, every node with it."""
    gate = anyio.Event()
    executors = {n: Held(float(i), gate) for i, n in enumerate(NODES)}
    config = Config(metropolis_hastings(ring(4)), {"iterations": 2 * HOLD})
    controller = transport(kind, kits, "controller", run_id="attacked", reconnect_window=0.0,
                           joiners=lambda n: n in NODES or n.startswith("admin"),
                           **controller_options)
    run = Run(controller, {n: transport(kind, kits, n, connect_timeout=10) for n in NODES})

    async def control() -> None:
        run.outcomes["controller"] = await serve_controller(config, {}, controller,
                                                            join_timeout=20)

    async def node(name: str) -> None:
        run.outcomes[name] = await serve_node(name, str(controller.address), run.nodes[name],
                                              lambda _: executors[name], join_timeout=20)

    with anyio.fail_after(45):
        async with anyio.create_task_group() as group:
            group.start_soon(control)
            while controller.address is None:
                await anyio.sleep(0.005)
            for name in NODES:
                group.start_soon(node, name)
            while any(e.iteration != HOLD - 1 for e in executors.values()):
                await anyio.sleep(0.005)
            yield run
            gate.set()
    result = run.outcomes["controller"]
    assert result.ok, result.reason
    assert all(run.outcomes[n] == {"status": "completed", "reason": None} for n in NODES)


async def handshake(kind: str, kits: Path, name: str, address: str,
                    secret: str | None = SECRET) -> tuple[ByteStream, tuple[str, str]]:
    """Dial ``address`` as ``name`` at the byte level; the stream and the answer."""
    host, port = split_address(address)
    if kind == "tls":
        stream: ByteStream = await anyio.connect_tcp(
            host, port, ssl_context=TlsConfig.from_dir(kits, name).client_context())
    else:
        stream = await anyio.connect_tcp(host, port)
    try:
        await stream.send(Hello(name, None, None, secret if kind == "tcp" else None).frame())
        reader = BufferedByteReceiveStream(stream)
        size = struct.unpack("<I", await reader.receive_exactly(4))[0]
        welcome = Welcome.parse(await reader.receive_exactly(size))
        return stream, (welcome.node, welcome.run)
    except BaseException:
        await stream.aclose()
        raise


def panic(sender: str, named: str, run: str) -> Envelope:
    return Envelope("panic", sender, "controller", "panic",
                    {"reason": "forged", "node": named, "iteration": 3}, None, run,
                    new_message_id())


@KINDS
async def test_an_admin_reads_status_but_cannot_report_a_panic(
        kind: str, kits: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with live_run(kind, kits) as run:
        address = str(run.controller.address)
        report = await query_status(address, transport(kind, kits, "admin", None), 5)
        assert report["state"] == "running"
        async with transport(kind, kits, "admin-2", None) as admin:
            admin.add_route("controller", address)
            await admin.connect("controller")
            assert admin.run_id is not None
            admin.send(panic("admin-2", "site-2", admin.run_id))
            await anyio.sleep(0.3)
    assert "admin 'admin-2' may only ask 'controller/admin' for 'status'" in caplog.text


@KINDS
async def test_a_node_reports_only_its_own_panic(
        kind: str, kits: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with live_run(kind, kits) as run:
        site = run.nodes["site-1"]
        assert site.run_id is not None
        site.send(panic("site-1", "site-2", site.run_id))
        await anyio.sleep(0.3)
    assert "node 'site-1' may only report its own panic, not 'site-2''s" in caplog.text


@KINDS
async def test_a_node_cannot_connect_to_a_non_neighbour_to_finish_it(
        kind: str, kits: Path) -> None:
    async with live_run(kind, kits) as run, \
            transport(kind, kits, "site-1", None, connect_timeout=1) as rogue:
        rogue.add_route("site-3", str(run.nodes["site-3"].address))
        rogue.run_id = run.nodes["site-1"].run_id
        with pytest.raises(TransportError, match="'site-1' may not connect here"):
            await rogue.connect("site-3")


@KINDS
async def test_a_second_connection_under_a_connected_name_is_refused(
        kind: str, kits: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with live_run(kind, kits) as run:
        address = str(run.controller.address)
        async with transport(kind, kits, "site-2", None, connect_timeout=1) as twin:
            twin.add_route("controller", address)
            with pytest.raises(TransportError, match="'site-2' is connected already"):
                await twin.connect("controller")
        with pytest.raises(TransportError, match="'site-1' is connected already"):
            await handshake(kind, kits, "site-1", address)  # then gone: nothing was lost
        await anyio.sleep(1.0)
    assert "node 'site-2' is connected already" in caplog.text


async def test_without_the_join_secret_plain_tcp_refuses_and_tells_no_run(kits: Path) -> None:
    async with live_run("tcp", kits) as run:
        with pytest.raises(TransportError, match="did not give this run's join secret") as info:
            await handshake("tcp", kits, "admin-x", str(run.controller.address), None)
        assert "attacked" not in str(info.value)


def resident() -> int:
    """This process's resident memory, in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


@KINDS
@pytest.mark.parametrize("short", [1, 0], ids=["partial", "undecodable"])
async def test_a_dropped_frame_frees_its_memory_at_once(
        kind: str, short: int, kits: Path, caplog: pytest.LogCaptureFixture) -> None:
    size = 192 << 20
    chunk = os.urandom(1 << 20)
    async with live_run(kind, kits) as run:
        gc.disable()  # what is freed must be freed by reference counting alone
        try:
            before = resident()
            stream, _ = await handshake(kind, kits, "admin-3", str(run.controller.address))
            await stream.send(struct.pack("<I", size))
            for _ in range((size >> 20) - 1):
                await stream.send(chunk)
            await stream.send(chunk[:len(chunk) - short])  # all, or all but a byte
            with contextlib.suppress(anyio.BrokenResourceError):  # TLS: dropped already
                await stream.aclose()
            while "'admin-3'" not in caplog.text:
                await anyio.sleep(0.01)
            grown = resident() - before
        finally:
            gc.enable()
    assert grown < 64 << 20, f"{grown >> 20} MiB still held"


@KINDS
async def test_frames_trickled_a_byte_at_a_time_are_dropped_and_an_idle_run_is_not(
        kind: str, kits: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with live_run(kind, kits, stall_grace=0.5, min_rate=1000) as run:
        streams = [(await handshake(kind, kits, name, str(run.controller.address)))[0]
                   for name in ADMINS[1:]]

        async def trickle(stream: ByteStream) -> None:
            with contextlib.suppress(anyio.BrokenResourceError, OSError, ssl.SSLError):
                await stream.send(struct.pack("<I", 10_000))
                while True:
                    await stream.send(b"x")
                    await anyio.sleep(0.1)

        started = anyio.current_time()
        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                for stream in streams:
                    group.start_soon(trickle, stream)
        assert anyio.current_time() - started < 3
        await anyio.sleep(1.0)  # the held run is idle well past the grace: it stays up
    assert caplog.text.count("an unfinished frame stalled") == len(streams)
