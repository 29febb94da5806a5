"""The conformance suite of ``peerflow.transport.testing``, run against every transport:
strict and by-reference memory, emulated links (over strict memory), TCP and TLS."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
from _net import KINDS, RUN
from _net import open_net as open_kind

from peerflow.transport import EmulatedTransport, Link, MemoryTransport, Transport, testing

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
