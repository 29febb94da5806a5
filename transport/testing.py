"""The transport conformance suite, for any ``Transport`` implementation to call.

Every check is an async function taking one factory, ``open_net(names)``: an
async context manager that yields ``{name: transport}`` in which every name can
reach every other (one transport shared by all names, or one per name with
routes between them, bound to the run ``RUN``). A check raises
``AssertionError`` naming what differs::

    @asynccontextmanager
    async def open_net(names):
        async with MyTransport() as shared:
            yield dict.fromkeys(names, shared)

    await check_transport(open_net)

A ``NetworkTransport`` (one per name, with routes) also passes ``NETWORK_CHECKS``:
``check_transport(open_net, network=True)``; given ``open_clogged`` (trio's
clogged stream maker, for a net), it passes ``CLOGGED_CHECKS`` too.

Whatever an algorithm may rely on is checked here once for all transports.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Final

import anyio
import numpy as np

from ._address import split_address
from ._check_tools import (
    CLOG_BURST,
    RUN,
    ClogNet,
    Inbox,
    OpenNet,
    dead_letters,
    eventually,
    tell,
)
from ._envelope import Envelope
from .abc import NetworkTransport, Transport, TransportError


async def check_a_tell_arrives_with_every_field_intact(open_net: OpenNet) -> None:
    async with open_net(["a", "b"]) as net:
        inbox = Inbox()
        net["b"].register("b", inbox)
        sent = tell("a", "b", {"x": 1.5, "n": [1, 2]}, iteration=7)
        net["a"].send(sent)
        (got,) = await inbox.wait(1)
    assert (got.kind, got.sender, got.recipient, got.topic, got.iteration, got.run, got.id) == \
        ("tell", "a", "b", "value", 7, RUN, sent.id)
    assert got.body == {"x": 1.5, "n": [1, 2]}


async def check_tensors_round_trip_bit_exactly_with_their_dtype(open_net: OpenNet) -> None:
    import torch  # here: importing the transport must not import torch

    body = {"f32": np.arange(10, dtype=np.float32), "i64": np.arange(6).reshape(2, 3),
            "bf16": torch.linspace(0, 1, 9, dtype=torch.bfloat16),
            "big": np.random.default_rng(0).normal(size=1 << 20)}
    async with open_net(["a", "b"]) as net:
        inbox = Inbox()
        net["b"].register("b", inbox)
        net["a"].send(tell("a", "b", body))
        (got,) = await inbox.wait(1)
    for key in ("f32", "i64", "big"):
        assert got.body[key].dtype == body[key].dtype
        np.testing.assert_array_equal(got.body[key], body[key])
    assert got.body["bf16"].dtype == torch.bfloat16
    assert torch.equal(got.body["bf16"], body["bf16"])


async def check_messages_from_one_sender_arrive_in_order(open_net: OpenNet) -> None:
    async with open_net(["a", "b"]) as net:
        inbox = Inbox()
        net["b"].register("b", inbox)
        for i in range(2000):
            net["a"].send(tell("a", "b", i, iteration=i))
        got = await inbox.wait(2000)
    assert [e.body for e in got] == list(range(2000))


async def check_peers_that_send_to_each_other_at_once_all_get_through(open_net: OpenNet
                                                                      ) -> None:
    names = ["site-1", "site-2", "site-3", "site-4"]
    async with open_net(names) as net:
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


async def check_an_envelope_for_an_unknown_endpoint_becomes_a_dead_letter(open_net: OpenNet
                                                                          ) -> None:
    async with open_net(["a", "b"]) as net:
        letters = dead_letters(net)
        net["a"].send(tell("a", "b/nobody"))
        net["a"].send(tell("a", "zed"))
        await eventually(lambda: len(letters) == 2)
    assert sorted(e.recipient for e, _ in letters) == ["b/nobody", "zed"]


async def check_an_unregistered_endpoint_gets_nothing_more(open_net: OpenNet) -> None:
    async with open_net(["a", "b"]) as net:
        letters = dead_letters(net)
        inbox = Inbox()
        net["b"].register("b", inbox)
        net["a"].send(tell("a", "b", 1))
        await inbox.wait(1)
        net["b"].unregister("b")
        net["a"].send(tell("a", "b", 2))
        await eventually(lambda: len(letters) == 1)
    assert [e.body for e in inbox.items] == [1] and letters[0][0].body == 2


async def check_registering_a_name_twice_raises(open_net: OpenNet) -> None:
    async with open_net(["a"]) as net:
        net["a"].register("a", Inbox())
        try:
            net["a"].register("a", Inbox())
        except ValueError as exc:
            assert "already registered" in str(exc), exc
        else:
            raise AssertionError("registering 'a' twice raised no ValueError")


async def check_sending_on_a_closed_transport_raises_closed_resource_error(open_net: OpenNet
                                                                           ) -> None:
    async with open_net(["a", "b"]) as net:
        await net["a"].aclose()
        await net["a"].aclose()  # idempotent
        try:
            net["a"].send(tell("a", "b"))
        except anyio.ClosedResourceError:
            return
    raise AssertionError("sending on a closed transport raised no ClosedResourceError")


async def multicast(net: Mapping[str, Transport], body: object,
                    after_send: Callable[[], object] = lambda: None
                    ) -> dict[str, list[Envelope]]:
    """``send_values`` from "a" to "b" and "c", each with a value hook, then ``after_send()``;
    return what each got (fast-path values as tells with no id)."""
    inboxes = {name: Inbox(name) for name in ("b", "c")}
    for name, inbox in inboxes.items():
        net[name].register(name, inbox)
        net[name].register_values(name, "value", inbox.value)
    net["a"].send_values("a", ["b", "c"], "value", 3, body, RUN)
    after_send()
    got = {name: await inbox.wait(1) for name, inbox in inboxes.items()}
    for inbox in inboxes.values():
        assert all(e.id for e in inbox.items if id(e) not in inbox.fast), "a tell with no id"
    return got


async def check_send_values_delivers_one_tell_per_recipient(open_net: OpenNet) -> None:
    async with open_net(["a", "b", "c"]) as net:
        got = await multicast(net, {"x": [1.5]})
    for name, (envelope,) in got.items():
        assert (envelope.kind, envelope.sender, envelope.recipient, envelope.topic,
                envelope.iteration, envelope.run, envelope.body) == \
            ("tell", "a", name, "value", 3, RUN, {"x": [1.5]})


async def check_send_values_delivers_the_value_as_it_was_when_sent(open_net: OpenNet) -> None:
    import torch

    body = {"np": np.arange(3.0), "pt": [torch.ones(2)], "both": (np.ones(1), torch.ones(1))}

    def update_in_place() -> None:
        for array in (body["np"], *body["pt"], *body["both"]):
            array *= -1

    async with open_net(["a", "b", "c"]) as net:
        got = await multicast(net, body, update_in_place)
    for (envelope,) in got.values():
        assert envelope.body["np"].tolist() == [0.0, 1.0, 2.0]
        assert envelope.body["pt"][0].tolist() == [1.0, 1.0]
        assert [x.tolist() for x in envelope.body["both"]] == [[1.0], [1.0]]


CHECKS: Final[tuple[Callable[[OpenNet], Awaitable[None]], ...]] = (
    check_a_tell_arrives_with_every_field_intact,
    check_tensors_round_trip_bit_exactly_with_their_dtype,
    check_messages_from_one_sender_arrive_in_order,
    check_peers_that_send_to_each_other_at_once_all_get_through,
    check_an_envelope_for_an_unknown_endpoint_becomes_a_dead_letter,
    check_an_unregistered_endpoint_gets_nothing_more,
    check_registering_a_name_twice_raises,
    check_sending_on_a_closed_transport_raises_closed_resource_error,
    check_send_values_delivers_one_tell_per_recipient,
    check_send_values_delivers_the_value_as_it_was_when_sent,
)
"""Every check, in the order ``check_transport`` runs them."""


async def check_a_connected_peer_is_described_by_name_and_address(open_net: OpenNet) -> None:
    async with open_net(["a", "b"]) as net:
        a = net["a"]
        assert isinstance(a, NetworkTransport), f"{type(a).__name__} is no NetworkTransport"
        with anyio.fail_after(10):
            await a.connect("b")
        (described,) = a.connections()
        assert described["peer"] == "b" and described["address"] == a.peer_address("b")
        split_address(str(a.peer_address("b")))


async def check_routes_are_validated_and_required(open_net: OpenNet) -> None:
    async with open_net(["a"]) as net:
        a = net["a"]
        assert isinstance(a, NetworkTransport), f"{type(a).__name__} is no NetworkTransport"
        for bad in ("nohost", "h:99999"):
            try:
                a.add_route("zed", bad)
            except ValueError:
                continue
            raise AssertionError(f"the route {bad!r} was taken")
        try:
            with anyio.fail_after(10):
                await a.connect("nobody")
        except TransportError:
            return
    raise AssertionError("connecting to a peer with no route raised no TransportError")


NETWORK_CHECKS: Final[tuple[Callable[[OpenNet], Awaitable[None]], ...]] = (
    check_a_connected_peer_is_described_by_name_and_address,
    check_routes_are_validated_and_required,
)
"""The checks of what a ``NetworkTransport`` adds; ``open_net`` yields one per name."""


async def check_a_clogged_peer_delays_no_other_peer(open_clogged: ClogNet) -> None:
    """Sending to a peer that stops reading never waits, and holds up no other peer's
    deliveries; once its backlog is over the transport's bound, a send to it raises a
    ``TransportError`` that names it."""
    async with open_clogged(["a", "b", "c"]) as net:
        inbox = Inbox("b")
        net["b"].register("b", inbox)
        block = np.zeros(1 << 17)  # 1 MiB
        congested: list[TransportError] = []
        for i in range(CLOG_BURST):
            try:
                net["a"].send(tell("a", "c", block, iteration=i))
            except TransportError as exc:
                congested.append(exc)
            net["a"].send(tell("a", "b", i, iteration=i))
            await anyio.sleep(0)  # let the connections move
        got = await inbox.wait(CLOG_BURST)
    assert [e.body for e in got] == list(range(CLOG_BURST)), "b's tells came out of order"
    unnamed = [str(exc) for exc in congested if "'c'" not in str(exc)]
    assert not unnamed, f"a send to the clogged peer 'c' failed without naming it: {unnamed[0]}"


CLOGGED_CHECKS: Final[tuple[Callable[[ClogNet], Awaitable[None]], ...]] = (
    check_a_clogged_peer_delays_no_other_peer,
)
"""The checks run with a clogged peer; ``open_clogged`` makes the net."""


async def check_transport(open_net: OpenNet, *, network: bool = False,
                          open_clogged: ClogNet | None = None) -> None:
    """Run every check of ``CHECKS`` against the transports ``open_net`` yields;
    with ``network``, those of ``NETWORK_CHECKS`` too; with ``open_clogged``, those of
    ``CLOGGED_CHECKS``.

    Raises:
        AssertionError: the transport breaks a promise; the message names which.
    """
    for check in (*CHECKS, *(NETWORK_CHECKS if network else ())):
        await check(open_net)
    for clogged_check in CLOGGED_CHECKS if open_clogged is not None else ():
        await clogged_check(open_clogged)
