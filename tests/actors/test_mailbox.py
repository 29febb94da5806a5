from __future__ import annotations

import asyncio
import logging
import tracemalloc

import anyio
import pytest

from peerflow.actors import IterationMailbox, MailboxBreach, SyncTimeout

NEIGHBOURS = frozenset({"a", "b"})


def mailbox(max_ahead: int = 1000) -> IterationMailbox:
    return IterationMailbox("me", NEIGHBOURS, max_ahead=max_ahead)


async def test_gather_returns_every_expected_value_once_all_are_in() -> None:
    box = mailbox()
    box.put("a", 0, 1.0)

    async def late() -> None:
        await anyio.sleep(0.01)
        box.put("b", 0, 2.0)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(late)
            values = await box.gather(0, NEIGHBOURS, timeout=5)
    assert values == {"a": 1.0, "b": 2.0}


async def test_values_for_later_iterations_are_buffered_until_gathered() -> None:
    box = mailbox()
    for t in range(3):
        box.put("a", t, t)
        box.put("b", t, -t)
    assert box.buffered == 6
    for t in range(3):
        assert await box.gather(t, NEIGHBOURS, timeout=1) == {"a": t, "b": -t}
    assert box.buffered == 0


async def test_a_duplicate_value_is_dropped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    box = mailbox()
    box.put("a", 0, 1.0)
    with caplog.at_level(logging.WARNING, "peerflow.mailbox"):
        box.put("a", 0, 99.0)
    box.put("b", 0, 2.0)
    assert await box.gather(0, NEIGHBOURS, timeout=1) == {"a": 1.0, "b": 2.0}
    assert box.dropped == 1
    assert "duplicate" in caplog.text


async def test_a_value_from_a_non_neighbour_is_dropped_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    box = mailbox()
    with caplog.at_level(logging.WARNING, "peerflow.mailbox"):
        box.put("stranger", 0, 1.0)
    assert box.buffered == 0 and box.dropped == 1
    assert "'stranger'" in caplog.text and "not an in-neighbour" in caplog.text


async def test_a_value_for_an_iteration_already_gathered_is_dropped() -> None:
    box = mailbox()
    box.put("a", 0, 1.0)
    box.put("b", 0, 1.0)
    await box.gather(0, NEIGHBOURS, timeout=1)
    box.put("a", 0, 5.0)
    assert box.buffered == 0 and box.dropped == 1


async def test_a_timeout_names_the_neighbours_that_never_answered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    box = mailbox()
    box.put("a", 4, 1.0)
    with caplog.at_level(logging.WARNING, "peerflow.mailbox"), pytest.raises(SyncTimeout) as info:
        with anyio.fail_after(5):
            await box.gather(4, NEIGHBOURS, timeout=0.2)
    assert info.value.missing == ["b"]
    assert "iteration 4" in str(info.value) and "['b']" in str(info.value)
    assert "still waiting for ['b']" in caplog.text


async def test_waiting_on_tells_whom_a_gather_waits_for_and_whether_it_is_overdue() -> None:
    box = mailbox()
    box.put("a", 2, 1.0)
    seen = []

    async def give_up() -> None:
        with pytest.raises(SyncTimeout):
            await box.gather(2, NEIGHBOURS, timeout=0.2)

    assert box.waiting_on() == (None, [], False)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(give_up)
            await anyio.sleep(0.05)
            seen.append(box.waiting_on())
            await anyio.sleep(0.1)
            seen.append(box.waiting_on())
    assert seen == [(2, ["b"], False), (2, ["b"], True)]
    assert box.waiting_on() == (2, ["b"], True)  # where it got stuck, after giving up


async def test_a_sender_too_far_ahead_breaches_the_bound_and_wakes_the_waiter() -> None:
    box = mailbox(max_ahead=3)

    async def runaway() -> None:
        await anyio.sleep(0.01)
        box.put("a", 3, 1.0)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(runaway)
            with pytest.raises(MailboxBreach, match="'a' sent iteration 3 while 0 is next"):
                await box.gather(0, NEIGHBOURS, timeout=10)


async def test_memory_stays_flat_over_100k_iterations() -> None:
    box = mailbox()
    tracemalloc.start()
    try:
        for t in range(100_000):
            box.put("a", t, 1.0)
            box.put("b", t, 2.0)
            await box.gather(t, NEIGHBOURS, timeout=1)
            if t == 1_000:
                early, _ = tracemalloc.get_traced_memory()
        late, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert box.buffered == 0
    assert late - early < 64 * 1024


def test_a_mailbox_used_on_a_second_event_loop_still_times_out() -> None:
    box = mailbox()

    async def on_the_first_loop() -> None:  # leaves the mailbox's timer on this loop
        loop = asyncio.get_running_loop()
        loop.call_soon(box.put, "a", 0, 1.0)
        loop.call_soon(box.put, "b", 0, 2.0)
        await box.gather(0, NEIGHBOURS, timeout=60)

    async def on_the_second_loop() -> None:
        with pytest.raises(SyncTimeout):
            await asyncio.wait_for(box.gather(1, NEIGHBOURS, timeout=0.2), 5)

    asyncio.run(on_the_first_loop())
    asyncio.run(on_the_second_loop())


async def test_a_shorter_timeout_than_the_last_one_still_times_out_on_time() -> None:
    box = mailbox()
    box.put("a", 1, 1.0)
    with anyio.move_on_after(0.05):
        await box.gather(1, NEIGHBOURS, timeout=10.0)  # its timer is due in 5 s
    start = anyio.current_time()
    with anyio.fail_after(5), pytest.raises(SyncTimeout):
        await box.gather(1, NEIGHBOURS, timeout=0.2)
    assert anyio.current_time() - start < 1.0
