"""The floor: the same consensus exchange in bare asyncio, with no framework at all.

Each node is a coroutine; each iteration it hands its value to every
out-neighbour and awaits one Future that the last expected value resolves
(a per-iteration dict and a Future). In memory the hand-off is a
direct call into the neighbour's per-iteration dict; over TCP (or TLS) each
directed link is one loopback connection carrying 17-byte headers and raw
values, parsed by a ``BufferedProtocol`` straight into the receiver's dict. The
mixing arithmetic and the history kept are ``ConsensusExecutor``'s, so the
difference to a peerflow run is the framework's own cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator, Callable, MutableSequence, Sequence
from typing import Any

import numpy as np

from peerflow.actors import Network

History = Callable[[Any], MutableSequence[Any]]
Stamp = tuple[float, float]
SslPair = tuple[ssl.SSLContext, ssl.SSLContext]  # (server, client)

_HEADER = struct.Struct("<IIQB")  # sender index, iteration, payload length, kind
_FLOAT, _ARRAY = 0, 1
_SCALAR = struct.Struct("<d")


def stamp() -> Stamp:
    """Wall time and this thread's CPU time, in seconds (CPU time ignores other processes)."""
    return time.perf_counter(), time.thread_time()


def full_history(x0: Any) -> list[Any]:
    """Every value, as ``ConsensusExecutor`` keeps them."""
    return [x0]


class _Box:
    """One node's per-iteration dicts and the Future its owner awaits."""

    __slots__ = ("slots", "need")

    def __init__(self, need: int) -> None:
        self.slots: dict[int, list[Any]] = {}
        self.need = need

    def put(self, sender: str, iteration: int, value: Any) -> None:
        slot = self.slots.get(iteration)
        if slot is None:
            slot = self.slots[iteration] = [{}, None]
        values = slot[0]
        values[sender] = value
        if len(values) == self.need and slot[1] is not None:
            slot[1].set_result(None)

    async def gather(self, iteration: int) -> dict[str, Any]:
        slot = self.slots.get(iteration)
        if slot is None:
            slot = self.slots[iteration] = [{}, None]
        if len(slot[0]) < self.need:
            slot[1] = asyncio.get_running_loop().create_future()
            await slot[1]
        del self.slots[iteration]
        return slot[0]


async def floor_run(network: Network, initial: Sequence[Any], iterations: int,
                    history: History = full_history, probe: list[Stamp] | None = None,
                    wire: str = "memory", tls: SslPair | None = None) -> list[Any]:
    """Run bare-asyncio consensus; return each node's final value in node order.

    Args:
        network: who mixes whom, with which weights (as for peerflow).
        initial: each node's initial value, in node order.
        iterations: how many exchanges.
        history: builds each node's history from its initial value.
        probe: if given, the first node appends ``stamp()`` at each exchange.
        wire: "memory" (direct calls) or "tcp" (one loopback connection per link).
        tls: server and client contexts, to run the TCP links over TLS.
    """
    boxes = {node.id: _Box(len(node.neighbors)) for node in network.nodes}
    out = network.out_neighbors()
    if wire == "memory":
        targets = {node: [boxes[t] for t in out[node]] for node in boxes}
        return await _run_nodes(network, initial, iterations, history, probe, boxes, targets)
    async with _tcp_links(network, boxes, out, tls) as targets:
        return await _run_nodes(network, initial, iterations, history, probe, boxes, targets)


async def _run_nodes(network: Network, initial: Sequence[Any], iterations: int,
                     history: History, probe: list[Stamp] | None, boxes: dict[str, _Box],
                     targets: dict[str, list[Any]]) -> list[Any]:
    finals: dict[str, Any] = {}

    async def node_loop(index: int) -> None:
        node = network.nodes[index]
        me, box, outs = node.id, boxes[node.id], targets[node.id]
        in_weights = [(n.id, n.weight or 0.0) for n in node.neighbors]
        self_weight = 1.0 - sum(w for _, w in in_weights)
        value = initial[index]
        values_seen = history(value)
        stamps = probe if index == 0 else None
        for t in range(iterations):
            if stamps is not None:
                stamps.append(stamp())
            for target in outs:
                target.put(me, t, value)
            values = await box.gather(t)
            mixed = value * self_weight
            for sender, weight in in_weights:
                mixed = mixed + values[sender] * weight
            value = mixed
            values_seen.append(mixed)
        finals[me] = value

    await asyncio.gather(*(node_loop(i) for i in range(len(network.nodes))))
    return [finals[node_id] for node_id in network.node_ids]


# -- the TCP links ---------------------------------------------------------------------------
class _Wire:
    """The sending end of one link: ``put`` writes one framed value."""

    __slots__ = ("transport", "sender")

    def __init__(self, transport: asyncio.WriteTransport, sender: int) -> None:
        self.transport = transport
        self.sender = sender

    def put(self, sender: str, iteration: int, value: Any) -> None:
        if isinstance(value, np.ndarray):
            payload: bytes | memoryview = memoryview(value).cast("B")
            kind = _ARRAY
        else:
            payload, kind = _SCALAR.pack(value), _FLOAT
        header = _HEADER.pack(self.sender, iteration, len(payload), kind)
        if len(payload) < 65536:
            self.transport.write(header + bytes(payload))
        else:
            self.transport.write(header)
            self.transport.write(payload)


class _Receiver(asyncio.BufferedProtocol):
    """The receiving end: frames read into one growing buffer, values into the box."""

    def __init__(self, box: _Box, names: Sequence[str]) -> None:
        self.box, self.names = box, names
        self.buffer = bytearray(1 << 16)
        self.filled = 0
        self.need = 0  # bytes the frame being read needs in all

    def get_buffer(self, sizehint: int) -> memoryview:
        # Grow here, never in buffer_updated: the loop holds a view of the buffer there.
        wanted = max(self.need, self.filled + 1)
        if wanted > len(self.buffer):
            self.buffer.extend(bytes(max(wanted, 2 * len(self.buffer)) - len(self.buffer)))
        return memoryview(self.buffer)[self.filled:]

    def buffer_updated(self, nbytes: int) -> None:
        self.filled += nbytes
        view, start = memoryview(self.buffer), 0
        while self.filled - start >= _HEADER.size:
            sender, iteration, size, kind = _HEADER.unpack_from(view, start)
            end = start + _HEADER.size + size
            if end > self.filled:
                break
            data = view[start + _HEADER.size:end]
            value = (_SCALAR.unpack(data)[0] if kind == _FLOAT
                     else np.frombuffer(bytes(data), dtype=np.float32))
            self.box.put(self.names[sender], iteration, value)
            start = end
        self.need = end - start if self.filled - start >= _HEADER.size else 0
        if start:
            self.buffer[:self.filled - start] = self.buffer[start:self.filled]
            self.filled -= start


@contextlib.asynccontextmanager
async def _tcp_links(network: Network, boxes: dict[str, _Box], out: dict[str, list[str]],
                     tls: SslPair | None) -> AsyncIterator[dict[str, list[Any]]]:
    """A loopback server per node and a connection per link; closed on exit."""
    loop = asyncio.get_running_loop()
    names = network.node_ids
    servers = {name: await loop.create_server(
        lambda box=boxes[name]: _Receiver(box, names), "127.0.0.1", 0,
        ssl=tls[0] if tls else None) for name in names}
    links: list[asyncio.BaseTransport] = []
    targets: dict[str, list[Any]] = {}
    try:
        for index, name in enumerate(names):
            targets[name] = []
            for target in out[name]:
                port = servers[target].sockets[0].getsockname()[1]
                transport, _ = await loop.create_connection(
                    asyncio.Protocol, "127.0.0.1", port, ssl=tls[1] if tls else None)
                transport.get_extra_info("socket").setsockopt(
                    socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                links.append(transport)
                targets[name].append(_Wire(transport, index))  # type: ignore[arg-type]
        yield targets
    finally:
        for link in links:
            link.close()
        for server in servers.values():
            server.close()
