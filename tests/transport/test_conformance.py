"""One conformance suite, run against every transport: strict and by-reference memory,
emulated links (over strict memory), TCP and TLS.

Whatever an algorithm may rely on is checked here once for all of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

import anyio
import numpy as np
import pytest
import torch
from _net import KINDS, RUN, tell
from _net import open_net as open_kind

from peerflow.transport import EmulatedTransport, Envelope, Link, MemoryTransport, Transport

SHARED = {  # transports that carry every name in one object
    "memory by reference": MemoryTransport,
    "emulated": lambda: EmulatedTransport(MemoryTransport(strict=True), Link(latency=0.001)),
}


@pytest.fixture(params=(*KINDS, *SHARED))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextlib.asynccontextmanager
async def open_net(kind: str, names: Iterable[str], kits: Path | None = None
                   ) -> AsyncIterator[dict[str, Transport]]:
    """``_net.open_net``, and the transports of ``SHARED``."""
    if kind not in SHARED:
        async with open_kind(kind, names, kits) as net:
            yield net
        return
    async with SHARED[kind]() as shared:
        yield dict.fromkeys(names, shared)


class Inbox:
    """Collects what an endpoint receives; ``wait(n)`` until n envelopes are in."""

    def __init__(self, name: str = "?") -> None:
        self.name = name
        self.items: list[Envelope] = []
        self._changed = anyio.Event()

    def __call__(self, envelope: Envelope) -> None:
        self.items.append(envelope)
        self._changed.set()

    def value(self, sender: str, iteration: int, body: object) -> None:
        """The fast path of ``send_values`` (topic "value"): kept as a tell with no id."""
        self(Envelope("tell", sender, self.name, "value", body, iteration, RUN, ""))

    async def wait(self, count: int, timeout: float = 10) -> list[Envelope]:
        with anyio.fail_after(timeout):
            while len(self.items) < count:
                self._changed = anyio.Event()
                await self._changed.wait()
        return self.items


def dead_letters(transports: dict[str, Transport]) -> list[tuple[Envelope, str]]:
    letters: list[tuple[Envelope, str]] = []
    for transport in set(transports.values()):
        transport.on_dead_letter = lambda e, r: letters.append((e, r))
    return letters


async def eventually(condition: Callable[[], bool], timeout: float = 10) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.01)


async def test_a_tell_arrives_with_every_field_intact(kind: str, kits: Path) -> None:
    async with open_net(kind, ["a", "b"], kits) as net:
        inbox = Inbox()
        net["b"].register("b", inbox)
        sent = tell("a", "b", {"x": 1.5, "n": [1, 2]}, iteration=7)
        net["a"].send(sent)
        (got,) = await inbox.wait(1)
    assert (got.kind, got.sender, got.recipient, got.topic, got.iteration, got.run, got.id) == \
        ("tell", "a", "b", "value", 7, RUN, sent.id)
    assert got.body == {"x": 1.5, "n": [1, 2]}


async def test_tensors_round_trip_bit_exactly_with_their_dtype(kind: str, kits: Path) -> None:
    body = {"f32": np.arange(10, dtype=np.float32), "i64": np.arange(6).reshape(2, 3),
            "bf16": torch.linspace(0, 1, 9, dtype=torch.bfloat16),
            "big": np.random.default_rng(0).normal(size=1 << 20)}
    async with open_net(kind, ["a", "b"], kits) as net:
        inbox = Inbox()
        net["b"].register("b", inbox)
        net["a"].send(tell("a", "b", body))
        (got,) = await inbox.wait(1)
    for key in ("f32", "i64", "big"):
        assert got.body[key].dtype == body[key].dtype
        np.testing.assert_array_equal(got.body[key], body[key])
    assert got.body["bf16"].dtype == torch.bfloat16
    assert torch.equal(got.body["bf16"], body["bf16"])


async def test_messages_from_one_sender_arrive_in_order(kind: str, kits: Path) -> None:
    async with open_net(kind, ["a", "b"], kits) as net:
        inbox = Inbox()
        net["b"].register("b", inbox)
        for i in range(2000):
            net["a"].send(tell("a", "b", i, iteration=i))
        got = await inbox.wait(2000)
    assert [e.body for e in got] == list(range(2000))


async def test_peers_that_send_to_each_other_at_once_both_get_through(kind: str,
                                                                      kits: Path) -> None:
    names = ["site-1", "site-2", "site-3", "site-4"]
    async with open_net(kind, names, kits) as net:
        inboxes = {n: Inbox() for n in names}
        for name in names:
            net[name].register(name, inboxes[name])
        for round_ in range(3):
            for name in names:
                for other in names:
                    if other != name:
                        net[name].send(tell(name, other, round_, iteration=round_))
            for name in names:
                await inboxes[name].wait(3 * (round_ + 1))
    for name in names:
        got = sorted((e.sender, e.body) for e in inboxes[name].items)
        assert got == sorted((o, r) for o in names if o != name for r in range(3))


async def test_an_envelope_for_an_unknown_endpoint_becomes_a_dead_letter(kind: str,
                                                                         kits: Path) -> None:
    async with open_net(kind, ["a", "b"], kits) as net:
        letters = dead_letters(net)
        net["a"].send(tell("a", "b/nobody"))
        net["a"].send(tell("a", "zed"))
        await eventually(lambda: len(letters) == 2)
    assert sorted(e.recipient for e, _ in letters) == ["b/nobody", "zed"]


async def test_an_unregistered_endpoint_gets_nothing_more(kind: str, kits: Path) -> None:
    async with open_net(kind, ["a", "b"], kits) as net:
        letters = dead_letters(net)
        inbox = Inbox()
        net["b"].register("b", inbox)
        net["a"].send(tell("a", "b", 1))
        await inbox.wait(1)
        net["b"].unregister("b")
        net["a"].send(tell("a", "b", 2))
        await eventually(lambda: len(letters) == 1)
    assert [e.body for e in inbox.items] == [1] and letters[0][0].body == 2


async def test_registering_a_name_twice_raises(kind: str, kits: Path) -> None:
    async with open_net(kind, ["a"], kits) as net:
        net["a"].register("a", Inbox())
        with pytest.raises(ValueError, match="already registered"):
            net["a"].register("a", Inbox())


async def test_sending_on_a_closed_transport_raises_closed_resource_error(kind: str,
                                                                          kits: Path) -> None:
    async with open_net(kind, ["a", "b"], kits) as net:
        await net["a"].aclose()
        await net["a"].aclose()  # idempotent
        with pytest.raises(anyio.ClosedResourceError):
            net["a"].send(tell("a", "b"))


async def multicast(net: dict[str, Transport], body: object,
                    after_send: Callable[[], object] = lambda: None
                    ) -> dict[str, list[Envelope]]:
    """``send_values`` from "a" to "b" and "c", each with a value hook, then ``after_send()``;
    what each got."""
    inboxes = {name: Inbox(name) for name in ("b", "c")}
    for name, inbox in inboxes.items():
        net[name].register(name, inbox)
        net[name].register_values(name, "value", inbox.value)
    net["a"].send_values("a", ["b", "c"], "value", 3, body, RUN)
    after_send()
    return {name: await inbox.wait(1) for name, inbox in inboxes.items()}


async def test_send_values_delivers_one_tell_per_recipient(kind: str, kits: Path) -> None:
    async with open_net(kind, ["a", "b", "c"], kits) as net:
        got = await multicast(net, {"x": [1.5]})
    for name, (envelope,) in got.items():
        assert (envelope.kind, envelope.sender, envelope.recipient, envelope.topic,
                envelope.iteration, envelope.run, envelope.body) == \
            ("tell", "a", name, "value", 3, RUN, {"x": [1.5]})
        assert envelope.id or kind == "memory by reference"  # its fast path has no envelope


async def test_send_values_delivers_the_value_as_it_was_when_sent(kind: str,
                                                                  kits: Path) -> None:
    body = {"np": np.arange(3.0), "pt": [torch.ones(2)], "both": (np.ones(1), torch.ones(1))}

    def update_in_place() -> None:
        for array in (body["np"], *body["pt"], *body["both"]):
            array *= -1

    async with open_net(kind, ["a", "b", "c"], kits) as net:
        got = await multicast(net, body, update_in_place)
    for (envelope,) in got.values():
        assert envelope.body["np"].tolist() == [0.0, 1.0, 2.0]
        assert envelope.body["pt"][0].tolist() == [1.0, 1.0]
        assert [x.tolist() for x in envelope.body["both"]] == [[1.0], [1.0]]


@pytest.mark.parametrize("strict", [True, False])
async def test_memory_send_values_gives_the_values_that_envelopes_give(strict: bool) -> None:
    body = np.arange(4.0)
    async with MemoryTransport(strict=strict, copy_on_send=False) as transport:
        letters = dead_letters({"a": transport})
        got = await multicast(dict.fromkeys("abc", transport), body)
        transport.send_values("a", ["zed"], "value", 3, body, RUN)
    for (envelope,) in got.values():
        assert (envelope.kind, envelope.sender, envelope.topic, envelope.iteration) == \
            ("tell", "a", "value", 3)
        np.testing.assert_array_equal(envelope.body, body)
        assert (envelope.body is body) == (not strict)  # by reference (no copy) unless strict
    assert [(e.recipient, e.iteration) for e, _ in letters] == [("zed", 3)]
