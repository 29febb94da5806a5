from __future__ import annotations

import logging
from typing import Any

import anyio
import anyio.abc
import pytest

from peerflow.actors import Actor, ActorDead, AskTimeout, RemoteError, Runtime
from peerflow.transport import Envelope, MemoryTransport


class Echo(Actor):
    def __init__(self) -> None:
        super().__init__("echo")
        self.told: list[Any] = []
        self.events: list[str] = []

    async def on_start(self) -> None:
        self.events.append("start")

    async def on_stop(self) -> None:
        self.events.append("stop")

    async def handle(self, envelope: Envelope) -> Any:
        if envelope.topic == "boom":
            raise ValueError("bad input")
        if envelope.topic == "slow":
            await anyio.sleep(10)
        if envelope.kind == "tell":
            self.told.append(envelope.body)
        return {"echo": envelope.body}


class Client(Actor):
    async def handle(self, envelope: Envelope) -> Any:
        return None


@pytest.fixture
def transport() -> MemoryTransport:
    return MemoryTransport(strict=True)


async def test_ask_returns_the_handlers_answer(transport: MemoryTransport) -> None:
    with anyio.fail_after(5):
        async with Runtime(transport) as runtime:
            await runtime.spawn(Echo())
            client = await runtime.spawn(Client("client"))
            assert await client.ask("echo", "hi", [1, 2.5], timeout=1) == {"echo": [1, 2.5]}


async def test_an_error_in_the_handler_propagates_to_the_asker(transport: MemoryTransport) -> None:
    with anyio.fail_after(5):
        async with Runtime(transport) as runtime:
            await runtime.spawn(Echo())
            client = await runtime.spawn(Client("client"))
            with pytest.raises(RemoteError, match="ValueError: bad input"):
                await client.ask("echo", "boom", timeout=1)


async def test_an_ask_without_reply_times_out(transport: MemoryTransport) -> None:
    with anyio.fail_after(5):
        async with Runtime(transport) as runtime:
            await runtime.spawn(Echo())
            client = await runtime.spawn(Client("client"))
            with pytest.raises(AskTimeout, match="no reply from 'echo' to 'slow' within 0.1s"):
                await client.ask("echo", "slow", timeout=0.1)


async def test_tell_is_handled_in_order(transport: MemoryTransport) -> None:
    with anyio.fail_after(5):
        async with Runtime(transport) as runtime:
            echo = await runtime.spawn(Echo())
            client = await runtime.spawn(Client("client"))
            for i in range(5):
                client.tell("echo", "note", i)
            await client.ask("echo", "sync", timeout=1)
    assert echo.told == [0, 1, 2, 3, 4]


async def test_lifecycle_hooks_run_at_start_and_stop(transport: MemoryTransport) -> None:
    with anyio.fail_after(5):
        async with Runtime(transport) as runtime:
            echo = await runtime.spawn(Echo())
            assert echo.events == ["start"]
    assert echo.events == ["start", "stop"]


async def test_a_pending_ask_fails_with_actor_dead_when_the_runtime_closes(
    transport: MemoryTransport,
) -> None:
    outcome: list[BaseException] = []

    async def asker(client: Actor) -> None:
        try:
            await client.ask("nobody-answers", "x", timeout=10)
        except ActorDead as exc:
            outcome.append(exc)

    with anyio.fail_after(5):
        async with Runtime(transport) as runtime:
            runtime.transport.register("nobody-answers", lambda envelope: None)
            client = await runtime.spawn(Client("client"))
            async with anyio.create_task_group() as group:
                group.start_soon(asker, client)
                await anyio.sleep(0.01)
                client._fail_pending()
    assert outcome and "stopped while waiting" in str(outcome[0])


async def test_an_envelope_to_an_unknown_actor_is_a_dead_letter(
    transport: MemoryTransport,
) -> None:
    with anyio.fail_after(5):
        async with Runtime(transport) as runtime:
            client = await runtime.spawn(Client("client"))
            client.tell("ghost", "hello", 1)
    [(envelope, reason)] = runtime.dead_letters
    assert envelope.recipient == "ghost" and "no endpoint named 'ghost'" in reason


async def test_dead_letters_to_one_recipient_make_one_warning_line(
    transport: MemoryTransport, caplog: pytest.LogCaptureFixture,
) -> None:
    with anyio.fail_after(5), caplog.at_level(logging.WARNING, "peerflow"):
        async with Runtime(transport) as runtime:
            client = await runtime.spawn(Client("client"))
            for i in range(5):
                client.tell("ghost", "hello", i)
            client.tell("phantom", "hello", 0)
    assert len(runtime.dead_letters) == 6
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 2
    assert "'ghost'" in warned[0] and "later ones to it" in warned[0]
    assert "'phantom'" in warned[1]


async def test_two_actors_cannot_share_a_name(transport: MemoryTransport) -> None:
    with anyio.fail_after(5):
        async with Runtime(transport) as runtime:
            await runtime.spawn(Echo())
            with pytest.raises(ValueError, match="already running"):
                await runtime.spawn(Echo())


class Ticker(Actor):
    """Counts ticks in a background task; records what it saw around the lifecycle."""

    def __init__(self) -> None:
        super().__init__("ticker")
        self.ticks = 0
        self.events: list[str] = []

    async def on_start(self) -> None:
        self.events.append("start")

    async def run_background(self, task_group: anyio.abc.TaskGroup) -> None:
        self.events.append("background")
        await task_group.start(self.tick)

    async def tick(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        task_status.started()
        try:
            while True:
                self.ticks += 1
                await anyio.sleep(0.001)
        finally:
            self.events.append("cancelled")

    async def on_stop(self) -> None:
        self.events.append("stop")

    async def handle(self, envelope: Envelope) -> Any:
        return self.ticks


async def test_background_tasks_live_exactly_as_long_as_the_actor(
    transport: MemoryTransport,
) -> None:
    with anyio.fail_after(5):
        async with Runtime(transport) as runtime:
            ticker = await runtime.spawn(Ticker())
            assert ticker.events == ["start", "background"]
            client = await runtime.spawn(Client("client"))
            while await client.ask("ticker", "ticks", timeout=1) < 3:
                await anyio.sleep(0.001)
        ticks = ticker.ticks
        await anyio.sleep(0.01)
    assert ticker.events == ["start", "background", "stop", "cancelled"]
    assert ticker.ticks == ticks  # nothing ticks once the actor has stopped


class Failing(Ticker):
    async def on_start(self) -> None:
        raise OSError("no such device")


async def test_an_error_in_on_start_fails_the_spawn_as_it_is(transport: MemoryTransport) -> None:
    with anyio.fail_after(5):
        async with Runtime(transport) as runtime:
            with pytest.raises(OSError, match="no such device"):
                await runtime.spawn(Failing())


class BrokenBackground(Ticker):
    async def tick(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        task_status.started()
        await anyio.sleep(0.01)
        raise ValueError("background broke")


async def test_a_failing_background_task_stops_its_actor(transport: MemoryTransport) -> None:
    with anyio.fail_after(5), pytest.raises(ExceptionGroup) as caught:
        async with Runtime(transport) as runtime:
            actor = await runtime.spawn(BrokenBackground())
            await anyio.sleep(1)
    assert caught.group_contains(ValueError, match="background broke")
    assert actor.events == ["start", "background", "stop"]
