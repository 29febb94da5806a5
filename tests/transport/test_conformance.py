"""The conformance suite of ``peerflow.transport.testing``, run against every transport:
strict and by-reference memory, emulated links (over strict memory), TCP and TLS."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import anyio
import anyio.abc
import numpy as np
import pytest
from _net import KINDS, RUN
from _net import open_net as open_kind
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.tls import TLSStream

from peerflow.transport import (
    EmulatedTransport,
    Envelope,
    Link,
    MemoryTransport,
    PeerCongested,
    TcpTransport,
    TlsConfig,
    Transport,
    Welcome,
    join_address,
    testing,
)

SHARED = {  # transports that carry every name in one object
    "memory by reference": MemoryTransport,
    "emulated": lambda: EmulatedTransport(MemoryTransport(strict=True), Link(latency=0.001)),
}


@pytest.fixture(params=(*KINDS, *SHARED))
def open_net(request: pytest.FixtureRequest, kits: Path) -> testing.OpenNet:
    """The factory of a net of the parametrized kind, as ``testing`` takes it."""
    kind = str(request.param)
    if kind not in SHARED:
        return functools.partial(open_kind, kind, kits=kits)

    @contextlib.asynccontextmanager
    async def shared(names: Sequence[str]) -> AsyncIterator[Mapping[str, Transport]]:
        async with SHARED[kind]() as transport:
            yield dict.fromkeys(names, transport)

    return shared


@pytest.mark.parametrize("check", testing.CHECKS, ids=lambda check: check.__name__[6:])
async def test_the_transport_keeps_its_promise(
        open_net: testing.OpenNet, check: Callable[[testing.OpenNet], Awaitable[None]]) -> None:
    await check(open_net)


@pytest.mark.parametrize("check", testing.NETWORK_CHECKS,
                         ids=lambda check: check.__name__[6:])
@pytest.mark.parametrize("kind", ["tcp", "tls"])
async def test_the_network_transport_keeps_its_promise(
        kind: str, kits: Path, check: Callable[[testing.OpenNet], Awaitable[None]]) -> None:
    await check(functools.partial(open_kind, kind, kits=kits))


@pytest.mark.parametrize("check", (*testing.CHECKS, *testing.NETWORK_CHECKS),
                         ids=lambda check: check.__name__[6:])
async def test_a_tcp_transport_that_coalesces_its_writes_keeps_every_promise(
        kits: Path, check: Callable[[testing.OpenNet], Awaitable[None]]) -> None:
    await check(functools.partial(open_kind, "tcp", kits=kits, coalesce=True))


@contextlib.asynccontextmanager
async def clogged(kind: str, kits: Path, names: Sequence[str]
                  ) -> AsyncIterator[Mapping[str, Transport]]:
    """A net of ``kind`` whose last name is a peer that says welcome, then never reads."""
    *others, stuck = names
    server_context = TlsConfig.from_dir(kits, stuck).server_context() if kind == "tls" else None

    async def welcome_then_stall(raw: anyio.abc.ByteStream) -> None:
        async with raw:
            stream = raw if server_context is None else await TLSStream.wrap(
                raw, server_side=True, ssl_context=server_context)
            reader = BufferedByteReceiveStream(stream)
            size = int.from_bytes(await reader.receive_exactly(4), "little")
            await reader.receive_exactly(size)  # the hello
            await stream.send(Welcome(stuck, RUN).frame())
            await anyio.sleep_forever()

    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener, \
            open_kind(kind, others, kits=kits, max_queued=8 << 20) as net, \
            anyio.create_task_group() as group:
        group.start_soon(listener.serve, welcome_then_stall)
        for transport in net.values():
            assert isinstance(transport, TcpTransport)
            transport.add_route(stuck, join_address(*listener.extra(
                anyio.abc.SocketAttribute.local_address)[:2]))
        yield net
        group.cancel_scope.cancel()


@pytest.mark.parametrize("kind", ["tcp", "tls"])
async def test_a_clogged_peer_holds_up_nobody_else_and_is_named(kind: str, kits: Path) -> None:
    raised: list[Exception] = []

    @contextlib.asynccontextmanager
    async def recording(names: Sequence[str]) -> AsyncIterator[Mapping[str, Transport]]:
        async with clogged(kind, kits, names) as net:
            send = net["a"].send

            def send_and_record(envelope: Envelope) -> None:
                try:
                    send(envelope)
                except Exception as exc:
                    raised.append(exc)
                    raise

            net["a"].send = send_and_record  # type: ignore[method-assign]
            yield net

    for check in testing.CLOGGED_CHECKS:
        await check(recording)
    assert raised and all(isinstance(exc, PeerCongested) for exc in raised), raised


async def test_check_transport_runs_every_check_over_strict_memory() -> None:
    @contextlib.asynccontextmanager
    async def strict(names: Sequence[str]) -> AsyncIterator[Mapping[str, Transport]]:
        async with MemoryTransport(strict=True) as transport:
            yield dict.fromkeys(names, transport)

    await testing.check_transport(strict)


@pytest.mark.parametrize("strict", [True, False])
async def test_memory_send_values_gives_the_values_that_envelopes_give(strict: bool) -> None:
    body = np.arange(4.0)
    async with MemoryTransport(strict=strict, copy_on_send=False) as transport:
        letters = testing.dead_letters({"a": transport})
        got = await testing.multicast(dict.fromkeys("abc", transport), body)
        transport.send_values("a", ["zed"], "value", 3, body, RUN)
    for (envelope,) in got.values():
        assert (envelope.kind, envelope.sender, envelope.topic, envelope.iteration) == \
            ("tell", "a", "value", 3)
        np.testing.assert_array_equal(envelope.body, body)
        assert (envelope.body is body) == (not strict)  # by reference (no copy) unless strict
    assert [(e.recipient, e.iteration) for e, _ in letters] == [("zed", 3)]


async def test_a_transport_that_breaks_a_promise_fails_its_check() -> None:
    @contextlib.asynccontextmanager
    async def uncopied(names: Sequence[str]) -> AsyncIterator[Mapping[str, Transport]]:
        async with MemoryTransport(copy_on_send=False) as transport:  # sent buffers shared
            yield dict.fromkeys(names, transport)

    with pytest.raises(AssertionError):
        await testing.check_send_values_delivers_the_value_as_it_was_when_sent(uncopied)
