"""Asynchronous executors: each node steps at its own pace, with no per-iteration barrier.

A node reads the newest value each in-neighbour sent (``LatestMailbox``), waits for
news at most ``max_wait`` seconds before stepping anyway, and sends its values
without waiting for anyone. It shares the synchronous executor's lifecycle: the
"config" and "run" tasks, the panic routine and the answers to the controller's
stall tracing, so a failure anywhere still aborts the whole run and names its node.
Liveness: a node that hears from none of its live in-neighbours for
``sync_timeout`` panics, naming them.

With a ``TickSchedule`` the run is reproducible: the node wakes at the schedule's ticks
only, a message the schedule loses is not sent, and each read waits for exactly the
values the schedule makes visible at that tick (``TickSchedule.visible``).
"""

from __future__ import annotations

import asyncio
import time
from abc import abstractmethod
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

from ._executor import DEFAULT_SYNC_TIMEOUT, VALUE_TOPIC, SyncAlgorithmExecutor
from ._latest import Latest, LatestMailbox
from ._local import LocalConfig
from ._ticks import TickSchedule

DEFAULT_MAX_WAIT = 0.01
"""Seconds a node waits for news before each tick by default: long enough for a value
to cross a local network, short against any sync timeout."""
FINAL_COPIES = 3
"""Copies of a node's final values: a lost final value would read as a stuck node."""


class AsyncAlgorithmExecutor(SyncAlgorithmExecutor):
    """Base class of asynchronous algorithms.

    Subclasses implement ``run_algorithm`` with ``ticks``, ``read``, ``post`` and
    ``drain``; ``self.iteration`` is the node's current tick and ``self.clock`` the
    seconds since the run started at each tick it took.

    Args:
        sync_timeout: seconds of silence from every live in-neighbour before panicking.
        max_wait: seconds to wait for news before stepping anyway.
        schedule: run on this seeded schedule instead of at the node's own pace.
        max_ahead: how many values one sender may have waiting in a scheduled run.
    """

    def __init__(self, sync_timeout: float = DEFAULT_SYNC_TIMEOUT,
                 max_wait: float = DEFAULT_MAX_WAIT,
                 schedule: TickSchedule | None = None, max_ahead: int = 1000) -> None:
        super().__init__(sync_timeout=sync_timeout, max_ahead=max_ahead)
        if not max_wait >= 0:
            raise ValueError(f"max_wait must be >= 0 seconds, got {max_wait}")
        self.max_wait = max_wait
        self.schedule = schedule
        self.clock: list[float] = []
        self._latest: LatestMailbox | None = None
        self._began = 0.0

    @abstractmethod
    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        """Run the algorithm and return this node's result (msgpack-able values)."""

    def _configure(self, controller: str, config: LocalConfig) -> None:
        super()._configure(controller, config)
        latest = self._latest = LatestMailbox(self.id, self._in_ids,
                                              keep_pending=self.schedule is not None,
                                              max_held=self.max_ahead)
        self._mailbox = latest  # type: ignore[assignment]  # same put, stop, waiting_on
        self.runtime.transport.register_values(self.name, VALUE_TOPIC, latest.put)

    def exchange(self, value: Any, iteration: int) -> Awaitable[dict[str, Any]]:
        """Not for asynchronous nodes: there is no iteration to gather.

        Raises:
            TypeError: always; use ``read`` and ``post``.
        """
        raise TypeError(f"node {self.id!r} runs asynchronously: it reads its neighbours' "
                        "latest values with read() and sends with post(), not exchange()")

    def ticks(self, iterations: int) -> Sequence[int]:
        """The ticks this node takes: the schedule's, else ``iterations`` of its own.

        Raises:
            ValueError: the schedule does not name this node.
        """
        self._began = time.perf_counter()
        self._box().start(self.sync_timeout)
        if self.schedule is None:
            return range(iterations)
        if self.id not in self.schedule.nodes:
            raise ValueError(f"node {self.id!r} is not in the schedule's nodes")
        return self.schedule.wakes(self.id)

    async def read(self, tick: int) -> dict[str, Latest]:
        """The in-neighbours' values new since the last read, by sender.

        Free-running: waits up to ``max_wait`` for news. Scheduled: waits for the
        newest values the schedule makes visible at ``tick``.

        Raises:
            SyncTimeout: no live in-neighbour was heard from for ``sync_timeout``
                (scheduled: a visible value did not come within it).
            MailboxBreach: a sender has too many values waiting.
        """
        self.iteration = tick
        self.clock.append(time.perf_counter() - self._began)
        box = self._box()
        if self.schedule is None:
            await asyncio.sleep(0)  # let the others run (and a cancellation in), news or not
            await box.news(tick, self.max_wait)
            return box.take_latest()
        wanted = self._visible(tick)
        await box.arrived(tick, wanted)
        return {sender: box.take(sender, t) for sender, t in sorted(wanted.items())}

    def post(self, tick: int, values: Mapping[str, Any], *, final: bool = False) -> None:
        """Send ``values[recipient]`` to each recipient, without waiting; ``final``
        marks the node's last values (its silence afterwards is no failure), sent
        ``FINAL_COPIES`` times over links that may lose them."""
        transport, run = self.runtime.transport, self.runtime.run_id
        copies = FINAL_COPIES if final and self.schedule is None else 1
        for recipient, value in values.items():
            if self.schedule is None or self.schedule.delay(self.id, recipient, tick) is not None:
                for _ in range(copies):
                    transport.send_values(self.name, (recipient,), VALUE_TOPIC, tick,
                                          [final, value], run)

    async def drain(self, tick: int) -> dict[str, Latest]:
        """After the last tick: every value still coming, by sender (the newest of each).

        Free-running: until every in-neighbour sent its final value. Scheduled: those
        visible at the schedule's end.

        Raises:
            SyncTimeout: a live in-neighbour was silent for ``sync_timeout``: it is
                stuck or gone.
        """
        if self.schedule is not None:
            return await self.read(self.schedule.ticks)
        box, news = self._box(), {}
        while await box.news(tick, self.sync_timeout):
            news.update(box.take_latest())
        return news

    def is_final(self, sender: str) -> bool:
        """Whether in-neighbour ``sender`` has sent its final values."""
        return self._box().is_final(sender)

    def _visible(self, tick: int) -> dict[str, int]:
        assert self.schedule is not None
        box, visible = self._box(), self.schedule.visible
        wanted = {s: visible(s, self.id, tick) for s in self._in_ids}
        return {s: t for s, t in wanted.items() if t is not None and t > box.taken(s)}

    def _box(self) -> LatestMailbox:
        assert self._latest is not None, "the node was not configured"
        return self._latest
