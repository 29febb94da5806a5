"""One ask to many actors: one wait for every reply, not one task per recipient.

At 10,000 nodes a task per recipient of the controller's "run" doubled the tasks
that a stop has to cancel, and cancelling them was most of a stop's time.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio

import peerflow
from peerflow import Config
from peerflow.actors import Actor, Runtime
from peerflow.algorithms import ConsensusExecutor, metropolis_hastings, ring
from peerflow.transport import Envelope, MemoryTransport


class Answering(Actor):
    """Answers "ask" with ``answer``; raises if it is an exception; never answers if None."""

    def __init__(self, name: str, answer: Any) -> None:
        super().__init__(name)
        self.answer = answer

    async def handle(self, envelope: Envelope) -> Any:
        if isinstance(self.answer, Exception):
            raise self.answer
        if self.answer is None:
            await anyio.sleep_forever()
        return self.answer


async def ask_all(answers: dict[str, Any], **options: Any) -> tuple[dict, dict, float]:
    async with Runtime(MemoryTransport()) as runtime:
        asker = await runtime.spawn(Actor("asker"))
        for name, answer in answers.items():
            await runtime.spawn(Answering(name, answer))
        started = anyio.current_time()
        got, failed = await asker.ask_each("ask", {name: None for name in answers}, **options)
        return got, failed, anyio.current_time() - started


async def test_every_reply_and_every_failure_is_reported_by_recipient() -> None:
    with anyio.fail_after(10):
        got, failed, _ = await ask_all({"a": 1, "b": ValueError("bad b"), "c": None},
                                       timeout=0.3)
    assert got == {"a": 1}
    assert sorted(failed) == ["b", "c"]
    assert "ValueError: bad b" in failed["b"]
    assert failed["c"] == "'asker' got no reply from 'c' to 'ask' within 0.3s"


async def test_enough_answers_end_the_wait_without_the_timeout() -> None:
    with anyio.fail_after(10):
        got, failed, took = await ask_all({"a": 1, "b": 2, "c": None}, timeout=30, need=2)
    assert got == {"a": 1, "b": 2} and failed == {} and took < 5


async def test_a_running_job_holds_one_task_per_node_not_two() -> None:
    nodes = 300
    network = metropolis_hastings(ring(nodes))
    executors = {node: ConsensusExecutor(float(i), sync_timeout=5.0)
                 for i, node in enumerate(network.node_ids)}
    counted: list[int] = []

    async def count(scope: anyio.CancelScope) -> None:
        while min(ex.iteration or 0 for ex in executors.values()) < 3:
            await anyio.sleep(0.02)
        counted.append(len(asyncio.all_tasks()))
        scope.cancel()

    with anyio.fail_after(50):
        async with anyio.create_task_group() as group:
            group.start_soon(count, group.cancel_scope)
            await peerflow.run(Config(network, {"iterations": 10**6}), executors)
    assert nodes < counted[0] < nodes + 20
