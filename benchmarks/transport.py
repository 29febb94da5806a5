"""Transport benchmark: TCP and TLS against floors measured in the same run.

``python -m benchmarks.transport --out DIR`` writes ``transport.json`` and ``transport.md``.

- Per-iteration latency: consensus over memory, tcp and tls (``simulate``, one process).
- 64-byte round trip between two processes, both on one CPU (waking the other vCPU of
  this shared machine takes 20 to 100 µs, varying; on one CPU a round trip costs the
  work of both ends): a blocking socket pair and a bare asyncio-streams echo (the bytes
  alone); the like-for-like floor: asyncio streams carrying peerflow's envelopes
  (encoded, framed, decoded, each answered with a new one as peerflow's echo does);
  peerflow TCP and TLS.
- One-way throughput of 1 KB, 1 MB and 16 MB numpy payloads between two processes:
  blocking sockets, plain and TLS (the physical floors), peerflow TCP and TLS (a window
  of messages in flight).
Every path runs ``ROUNDS`` times in turn (``RTT_ROUNDS`` for round trips; medians), each
time in fresh processes: peerflow's round trip moves by up to a third from one pair of
processes to the next and stays put within a pair (memory layout: with address-space
randomization off it stays at the low end), so one round says little. The echo/sink side runs
in a child process; every loop is uvloop when installed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import multiprocessing as mp
import os
import socket
import statistics
import struct
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import numpy as np

import peerflow
from peerflow.algorithms import ConsensusExecutor, metropolis_hastings, random_connected
from peerflow.transport import (
    Envelope,
    Project,
    TcpTransport,
    TlsConfig,
    decode,
    encode_bytes,
    new_message_id,
    provision,
    run_loop,
    split_address,
)

_BARE = "asyncio streams, bare 64 B echo"
_ALIKE = "asyncio streams, same envelopes"
SIZES = {"1 KB": 1 << 10, "1 MB": 1 << 20, "16 MB": 16 << 20}
VOLUME = 512 << 20  # bytes per throughput measurement
PAYLOAD = b"x" * 64
PINGS, ROUNDS = 2000, 3  # round trips per measurement; measurements of each path, in turn
RTT_ROUNDS = 5  # round trips vary most from process to process (memory layout): more rounds
_LEN = struct.Struct("<I")


def _run(main: Callable[[], Any]) -> Any:
    return run_loop(main)


async def _timed(ping: Callable[[], Awaitable[None]]) -> list[float]:
    times = []
    for _ in range(PINGS):
        start = time.perf_counter()
        await ping()
        times.append(time.perf_counter() - start)
    return times


@contextlib.contextmanager
def _one_core() -> Iterator[None]:
    """Pin this process and its children to one CPU: a round trip costs both ends' work."""
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, cpus)


def _count(size: int) -> int:  # messages per throughput measurement
    return max(20, min(VOLUME // size, 1 << 16))


def _window(size: int) -> int:
    """peerflow messages in flight: about 64 MB, far below the congestion bound."""
    return max(2, (64 << 20) // size)


# -- floors: blocking sockets ---------------------------------------------------------
def _socket_server(port_out: Any, mode: str, size: int, kits: str | None = None) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port_out.send(server.getsockname()[1])
        conn, _ = server.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if kits:
            conn = TlsConfig.from_dir(kits, "b").server_context().wrap_socket(conn, True)
        buf = memoryview(bytearray(max(size, 64) + 4))
        if mode == "echo":
            while (n := conn.recv_into(buf)) > 0:
                conn.sendall(buf[:n])
        else:
            total = _count(size) * (size + 4)
            while total > 0:
                total -= conn.recv_into(buf[: min(len(buf), 1 << 20)])
            conn.sendall(b"k")
        conn.close()


def socket_round_trip() -> list[float]:
    with _child(_socket_server, "echo", 64) as port, \
            socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        times = []
        for _ in range(PINGS):
            start = time.perf_counter()
            sock.sendall(PAYLOAD)
            sock.recv(64, socket.MSG_WAITALL)
            times.append(time.perf_counter() - start)
    return times


def socket_throughput(size: int, kits: str | None = None) -> float:
    """Blocking sockets, plain or (``kits``) TLS: the physical floors."""
    with _child(_socket_server, "sink", size, kits) as port, \
            socket.create_connection(("127.0.0.1", port)) as raw:
        sock = TlsConfig.from_dir(kits, "a").client_context().wrap_socket(raw) if kits else raw
        data = np.zeros(size, dtype=np.uint8)
        start = time.perf_counter()
        for _ in range(_count(size)):
            sock.sendall(_LEN.pack(size))
            sock.sendall(memoryview(data))
        sock.recv(1)
        elapsed = time.perf_counter() - start
        sock.close()
    return _count(size) * size / elapsed


# -- floors: asyncio streams ------------------------------------------------------------
async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (length,) = _LEN.unpack(await reader.readexactly(4))
    return await reader.readexactly(length)


def _write_envelope(writer: asyncio.StreamWriter, envelope: Envelope) -> None:
    frame = encode_bytes(envelope)
    writer.write(_LEN.pack(len(frame)) + frame)


def _streams_server(port_out: Any, mode: str) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if mode == "echo":
            while data := await reader.read(64):
                writer.write(data)
        else:
            with contextlib.suppress(asyncio.IncompleteReadError):
                while True:
                    envelope = decode(await _read_frame(reader))
                    _write_envelope(writer, _tell("b", "a", envelope.body))
        await writer.drain()
        writer.close()
        done.set()

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port_out.send(server.sockets[0].getsockname()[1])
        await done.wait()
        server.close()

    done = asyncio.Event()
    _run(main)


def streams_round_trip(envelopes: bool) -> list[float]:
    """Bare 64 bytes echoed, or (``envelopes``) peerflow's envelope frames both ways."""
    async def main() -> list[float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def ping() -> None:
            if envelopes:
                _write_envelope(writer, _tell("a", "b", PAYLOAD))
                decode(await _read_frame(reader))
            else:
                writer.write(PAYLOAD)
                await reader.readexactly(64)

        times = await _timed(ping)
        writer.close()
        return times

    with _child(_streams_server, "envelopes" if envelopes else "echo") as port:
        return _run(main)


# -- peerflow TCP and TLS -----------------------------------------------------------------
def _peerflow_server(port_out: Any, mode: str, size: int, kits: str | None) -> None:
    async def main() -> None:
        tls = TlsConfig.from_dir(kits, "b") if kits else None
        async with TcpTransport("b", run_id="bench", tls=tls) as transport:
            done = anyio.Event()
            received, every = [0], max(1, min(8, _window(size) // 2))

            def deliver(envelope: Envelope) -> None:
                received[0] += 1
                if mode == "echo" or received[0] % every == 0 or \
                        received[0] == _count(size):
                    transport.send(_tell("b", "a", envelope.body if mode == "echo" else
                                         received[0]))
                if envelope.topic == "stop":
                    done.set()

            transport.register("b", deliver)
            port_out.send(split_address(str(transport.address))[1])
            await done.wait()

    _run(main)


def _tell(sender: str, recipient: str, body: Any, topic: str = "value") -> Envelope:
    return Envelope("tell", sender, recipient, topic, body, 0, "bench", new_message_id())


class _Client:
    """Transport ``a`` and what ``b`` sent back, awaited on a bare Future (as a mailbox)."""

    def __init__(self, transport: TcpTransport) -> None:
        self.transport = transport
        self.replies: collections.deque[Any] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.loop = asyncio.get_running_loop()
        transport.register("a", self.deliver)

    def deliver(self, envelope: Envelope) -> None:
        self.replies.append(envelope.body)
        if self.waiter and not self.waiter.done():
            self.waiter.set_result(None)

    async def next_reply(self) -> Any:
        while not self.replies:
            self.waiter = self.loop.create_future()
            await self.waiter
        return self.replies.popleft()


async def _peerflow_client(port: int, kits: str | None,
                           work: Callable[[_Client], Any]) -> Any:
    tls = TlsConfig.from_dir(kits, "a") if kits else None
    async with TcpTransport("a", None, run_id="bench", tls=tls,
                            routes={"b": f"127.0.0.1:{port}"}) as transport:
        client = _Client(transport)
        await transport.connect("b")
        result = await work(client)
        transport.send(_tell("a", "b", None, "stop"))
        return result


def peerflow_round_trip(kits: str | None) -> list[float]:
    async def work(client: _Client) -> list[float]:
        async def ping() -> None:
            client.transport.send(_tell("a", "b", PAYLOAD))
            await client.next_reply()

        return await _timed(ping)

    with _child(_peerflow_server, "echo", 64, kits) as port:
        return _run(lambda: _peerflow_client(port, kits, work))


def peerflow_throughput(size: int, kits: str | None) -> float:
    window = _window(size)

    async def work(client: _Client) -> float:
        data = np.zeros(size, dtype=np.uint8)
        acked, count = 0, _count(size)
        start = time.perf_counter()
        for sent in range(1, count + 1):
            client.transport.send(_tell("a", "b", data))
            while sent - acked >= window:
                acked = await client.next_reply()
        while acked < count:
            acked = await client.next_reply()
        return count * size / (time.perf_counter() - start)

    with _child(_peerflow_server, "sink", size, kits) as port:
        return _run(lambda: _peerflow_client(port, kits, work))


@contextlib.contextmanager
def _child(target: Callable[..., None], *args: Any) -> Iterator[int]:
    """Run ``target(port_out, *args)`` in a child process; yield the port it reports."""
    context = mp.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=target, args=(send, *args), daemon=True)
    process.start()
    try:
        yield int(receive.recv())
    finally:
        process.join(30)
        process.kill()  # if it is still there
        process.join()


# -- per-iteration latency -----------------------------------------------------------------
def iteration_ms(transport: str, nodes: int = 6, iterations: int = 300) -> float:
    network = metropolis_hastings(random_connected(nodes, seed=42))
    executors = [ConsensusExecutor(float(i), sync_timeout=30) for i in range(nodes)]
    result = peerflow.simulate(peerflow.Config(network, {"iterations": iterations}), executors,
                               transport)
    assert result.ok, result.reason
    return 1000 * result.timings["run"] / iterations


def _in_turn(paths: dict[str, Callable[[], Any]], rounds: int = ROUNDS) -> dict[str, list[Any]]:
    """Run every path ``rounds`` times in turn, so that a noisy spell hits them all alike."""
    results: dict[str, list[Any]] = {path: [] for path in paths}
    for _ in range(rounds):
        for path, run in paths.items():
            results[path].append(run())
    return results


def _throughputs(size: int, kits: str) -> dict[str, list[float]]:
    return _in_turn({"socket pair": lambda: socket_throughput(size),
                     "tls socket pair": lambda: socket_throughput(size, kits),
                     "peerflow tcp": lambda: peerflow_throughput(size, None),
                     "peerflow tls": lambda: peerflow_throughput(size, kits)})


def measure(kits: str) -> dict[str, Any]:
    """Every figure, with its floors, measured now (medians over the rounds)."""
    load = os.getloadavg()[0]
    with _one_core():
        rtt = _in_turn({"socket pair": socket_round_trip,
                        _BARE: lambda: streams_round_trip(False),
                        _ALIKE: lambda: streams_round_trip(True),
                        "peerflow tcp": lambda: peerflow_round_trip(None),
                        "peerflow tls": lambda: peerflow_round_trip(kits)}, RTT_ROUNDS)
    throughput = {label: _throughputs(size, kits) for label, size in SIZES.items()}
    return {"load_average_1min": [load, os.getloadavg()[0]],
            "iteration_ms": {t: iteration_ms(t) for t in ("memory", "tcp", "tls")},
            "round_trip_us": {k: 1e6 * statistics.median(sum(v, [])) for k, v in rtt.items()},
            "throughput_gb_s": {size: {k: statistics.median(v) / 1e9 for k, v in row.items()}
                                for size, row in throughput.items()}}


def markdown(figures: dict[str, Any]) -> str:
    """The figures as markdown tables, with ratios to the floors."""
    it = figures["iteration_ms"]
    lines = ["## Per-iteration latency (consensus, 6 nodes, one process)", "",
             "| transport | ms / iteration | x memory |", "|---|---|---|"]
    lines += [f"| {t} | {ms:.3f} | {ms / it['memory']:.1f} |" for t, ms in it.items()]
    rtt = figures["round_trip_us"]
    lines += ["", "## 64-byte round trip between two processes "
              f"(median of {RTT_ROUNDS} rounds)", "",
              f"Both ends pinned to one CPU. Like-for-like floor: {_ALIKE}. "
              "Load average (1 min) before and after: "
              + " / ".join(f"{x:.1f}" for x in figures["load_average_1min"]) + ".", "",
              "| path | µs | x socket pair | x streams, bare | x streams, same envelopes |",
              "|---|---|---|---|---|"]
    lines += [f"| {k} | {v:.0f} | {v / rtt['socket pair']:.2f} | {v / rtt[_BARE]:.2f} | "
              f"{v / rtt[_ALIKE]:.2f} |" for k, v in rtt.items()]
    lines += ["", f"peerflow tls / peerflow tcp: {rtt['peerflow tls'] / rtt['peerflow tcp']:.2f}",
              "", f"## One-way throughput between two processes (GB/s, median of {ROUNDS} rounds)",
              "",
              "| payload | socket pair | tls socket pair | peerflow tcp | peerflow tls | "
              "tcp / socket pair | tls / tls socket pair | tls / tcp | "
              "tls socket pair / socket pair |",
              "|---|---|---|---|---|---|---|---|---|"]
    for size, row in figures["throughput_gb_s"].items():
        tcp, tls = row["peerflow tcp"], row["peerflow tls"]
        plain, secure = row["socket pair"], row["tls socket pair"]
        lines.append(f"| {size} | {plain:.2f} | {secure:.2f} | {tcp:.2f} | {tls:.2f} | "
                     f"{tcp / plain:.0%} | {tls / secure:.0%} | {tls / tcp:.0%} | "
                     f"{secure / plain:.0%} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as kits:
        provision(Project("bench", "b", ("a",), ()), kits)
        figures = measure(kits)
    (args.out / "transport.json").write_text(json.dumps(figures, indent=2) + "\n")
    (args.out / "transport.md").write_text(markdown(figures))
    print(markdown(figures))


if __name__ == "__main__":
    main()
