"""The latest-value mailbox: newest value per sender, bounded memory, the sync mailbox's
refusals, and liveness."""

from __future__ import annotations

import logging

import anyio
import pytest

from peerflow.actors import LatestMailbox, MailboxBreach, SyncTimeout, TickSchedule

NEIGHBOURS = frozenset({"a", "b"})


async def test_only_the_newest_value_of_each_sender_is_kept_and_read() -> None:
    box = LatestMailbox("me", NEIGHBOURS)
    for tick in range(100):
        box.put("a", tick, [False, tick])
    box.put("a", 50, [False, "overtaken"])  # older than the newest: stale
    latest = box.take_latest()
    assert list(latest) == ["a"] and latest["a"].value == 99 and latest["a"].tick == 99
    assert latest["a"].age >= 0 and box.stale == 1 and not box.has_news()
    box.put("a", 99, [False, "again"])  # already taken
    assert box.take_latest() == {} and box.stale == 2


async def test_a_value_from_a_non_neighbour_is_dropped_and_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    box = LatestMailbox("me", NEIGHBOURS)
    with caplog.at_level(logging.WARNING, "peerflow.mailbox"):
        box.put("mallory", 0, [False, 1.0])
        box.put("a", 0, "not a pair")
    assert box.dropped == 2 and not box.has_news()
    assert "'mallory'" in caplog.text and "not an in-neighbour" in caplog.text
    assert "[final, value]" in caplog.text


async def test_a_scheduled_mailbox_keeps_pending_values_up_to_its_bound() -> None:
    box = LatestMailbox("me", NEIGHBOURS, keep_pending=True, max_held=3)
    for tick in range(3):
        box.put("a", tick, [False, tick])
    assert box.take("a", 1).value == 1 and box.taken("a") == 1
    with pytest.raises(KeyError):
        box.take("a", 0)  # discarded: older than the one taken
    for tick in range(3, 6):
        box.put("a", tick, [False, tick])
    with anyio.fail_after(5), pytest.raises(MailboxBreach, match="'a' sent tick 5"):
        box.start(1.0)
        await box.arrived(6, {"a": 5})


async def test_news_wakes_on_a_value_and_gives_up_after_max_wait() -> None:
    box = LatestMailbox("me", NEIGHBOURS)
    box.start(5.0)
    with anyio.fail_after(5):
        assert not await box.news(0, max_wait=0.01)

        async def late() -> None:
            await anyio.sleep(0.01)
            box.put("b", 3, [False, 1.5])

        async with anyio.create_task_group() as group:
            group.start_soon(late)
            assert await box.news(0, max_wait=4)
    assert box.take_latest()["b"].value == 1.5


async def test_silence_from_every_live_neighbour_raises_and_final_ones_do_not_count() -> None:
    box = LatestMailbox("me", NEIGHBOURS)
    box.start(0.05)
    box.put("a", 0, [True, 1.0])  # a is done: its silence is no failure
    box.take_latest()
    with anyio.fail_after(5), pytest.raises(SyncTimeout, match=r"none of \['b'\]") as caught:
        await box.news(7, max_wait=10)
    assert caught.value.missing == ["b"]
    assert box.waiting_on() == (7, ["b"], True)
    box.put("b", 1, [True, 2.0])
    box.take_latest()
    assert not await box.news(8, max_wait=10)  # everyone is done: no wait at all


def test_a_schedule_is_a_function_of_its_seed() -> None:
    nodes = ["a", "b", "c"]
    one = TickSchedule(nodes, 500, seed=4, speeds={"c": 5.0}, max_delay=3, drop=0.2)
    two = TickSchedule.from_dict(one.to_dict())
    assert one.owners == two.owners and len(one.wakes("c")) > 2 * len(one.wakes("a"))
    fates = [one.delay("a", "b", k) for k in range(500)]
    assert fates == [two.delay("a", "b", k) for k in range(500)]
    assert 0.1 < fates.count(None) / 500 < 0.3 and {1, 2, 3, 4} <= set(fates)
    for tick in (100, 200, 499):
        seen = one.visible("a", "b", tick)
        assert seen is not None and seen < tick and one.delay("a", "b", seen) + seen <= tick
    with pytest.raises(ValueError, match="drop in"):
        TickSchedule(nodes, 10, drop=1.0)
