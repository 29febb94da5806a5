"""Per-iteration mailbox: one slot per iteration, one fresh event per slot.

``put`` is a plain call made by the transport's delivery path; ``gather`` is
awaited by the executor. A slot is freed as soon as it is gathered, so memory
stays flat over any number of iterations. Values for later iterations are
buffered up to ``max_ahead`` iterations; a sender beyond that is in breach.

Why a bare asyncio Future and one lazily re-armed loop timer, not ``anyio.Event``
in ``anyio.move_on_after``: this wait happens once per node and iteration, and on
CPython 3.11 the anyio pair costs about 10 µs (the cancel scope alone 7.6 µs),
more than the whole bare-asyncio floor's node-iteration (benchmarks/latency.py).
Cancellation still comes from the caller's anyio scopes: cancelling the task
cancels the awaited Future. The runtime runs on anyio's asyncio backend (uvloop
included), as ``simulate`` does.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ._errors import MailboxBreach, SyncTimeout

logger = logging.getLogger("peerflow.mailbox")


class _Slot:
    __slots__ = ("values", "missing", "waiter")

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.missing: set[str] | None = None
        self.waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        """Resolve the gatherer's Future, if one is waiting (a timer may call it too)."""
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class _Alarm:
    """One loop timer per mailbox, re-armed lazily: arming it is two assignments.

    A timer per wait would cost a heap push and a cancel each iteration (on the
    asyncio loop, a Python heap of TimerHandles). Instead the timer stays
    scheduled; when it fires before the current deadline it is pushed to it, and
    when nothing waits it lapses until the next ``arm``.
    """

    __slots__ = ("deadline", "slot", "_handle", "_loop")

    def __init__(self) -> None:
        self.deadline = 0.0
        self.slot: _Slot | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def arm(self, loop: asyncio.AbstractEventLoop, delay: float, slot: _Slot) -> None:
        """Wake ``slot`` in ``delay`` seconds (nothing happens if it is done or cleared)."""
        self.deadline = loop.time() + delay
        self.slot = slot
        if self._handle is None or self._loop is not loop:
            self._loop = loop
            self._handle = loop.call_at(self.deadline, self._fire)

    def _fire(self) -> None:
        self._handle = None
        if self.slot is None or self._loop is None:
            return
        if self._loop.time() >= self.deadline:
            self.slot.wake()
        else:
            self._handle = self._loop.call_at(self.deadline, self._fire)


class IterationMailbox:
    """Collects neighbours' values per iteration.

    Args:
        owner: name of the owning node, for log lines and errors.
        senders: the only names whose values are accepted (the in-neighbours).
        max_ahead: how many iterations beyond the next one to gather may be buffered.
    """

    def __init__(self, owner: str, senders: frozenset[str] | set[str], max_ahead: int = 1000):
        if max_ahead < 1:
            raise ValueError(f"max_ahead must be >= 1, got {max_ahead}")
        self.owner = owner
        self.senders = frozenset(senders)
        self.max_ahead = max_ahead
        self.dropped = 0
        self._slots: dict[int, _Slot] = {}
        self._next = 0
        self._breach: str | None = None
        self._alarm = _Alarm()

    @property
    def buffered(self) -> int:
        """Number of values held, over all iterations."""
        return sum(len(slot.values) for slot in self._slots.values())

    def put(self, sender: str, iteration: int, value: Any) -> None:
        """Accept ``sender``'s value for ``iteration``; never blocks, never raises.

        Values from non-neighbours, for iterations already gathered, and
        duplicates are dropped and logged. A value too far ahead marks a breach
        that the next ``gather`` raises.
        """
        next_ = self._next
        if sender not in self.senders or not next_ <= iteration < next_ + self.max_ahead:
            return self._refuse(sender, iteration)
        slot = self._slots.get(iteration)
        if slot is None:
            slot = self._slots[iteration] = _Slot()
        values = slot.values
        if sender in values:
            return self._drop(sender, iteration, "it is a duplicate")
        values[sender] = value
        missing = slot.missing
        if missing is not None:
            missing.discard(sender)
            if not missing:
                slot.wake()

    async def gather(
        self, iteration: int, expected: frozenset[str] | set[str], timeout: float
    ) -> dict[str, Any]:
        """Return ``{sender: value}`` for ``iteration`` once every expected sender is in.

        Raises:
            SyncTimeout: some expected senders did not deliver within ``timeout``.
            MailboxBreach: a sender ran more than ``max_ahead`` iterations ahead.
        """
        if self._breach is not None:
            raise MailboxBreach(self._breach)
        slot = self._slots.get(iteration)
        if slot is None:
            slot = self._slots[iteration] = _Slot()
        values = slot.values
        if not values.keys() >= expected:
            slot.missing = expected - values.keys()
            await self._arm(slot, timeout / 2)
            if slot.missing or self._breach is not None:
                await self._wait_longer(iteration, slot, timeout)
            self._alarm.slot = None  # let the gathered values go
        del self._slots[iteration]
        self._next = iteration + 1
        return values

    async def _wait_longer(self, iteration: int, slot: _Slot, timeout: float) -> None:
        """Half the timeout has passed: warn, wait the other half, raise what is still wrong."""
        self._raise_on_breach()
        assert slot.missing is not None
        logger.warning(
            "node %r iteration %d: still waiting for %s after %.3gs",
            self.owner, iteration, sorted(slot.missing), timeout / 2,
        )
        await self._arm(slot, timeout - timeout / 2)
        self._raise_on_breach()
        if slot.missing:
            missing_now = sorted(slot.missing)
            raise SyncTimeout(
                f"node {self.owner!r} iteration {iteration}: no value from {missing_now} "
                f"within {timeout:g}s",
                missing_now,
            )

    def _arm(self, slot: _Slot, delay: float) -> asyncio.Future[None]:
        """A Future that ``slot.wake()`` resolves, or the alarm in ``delay`` seconds.

        Awaited directly by the caller (no coroutine of its own: this is the hot
        path). Nothing needs undoing on failure: a late alarm finds the Future done.
        """
        loop = asyncio.get_running_loop()
        waiter = slot.waiter = loop.create_future()
        self._alarm.arm(loop, delay, slot)
        return waiter

    def _refuse(self, sender: str, iteration: int) -> None:
        if sender not in self.senders:
            return self._drop(sender, iteration, "it is not an in-neighbour")
        if iteration < self._next:
            return self._drop(sender, iteration, f"iteration {iteration} is already gathered")
        return self._mark_breach(sender, iteration)

    def _mark_breach(self, sender: str, iteration: int) -> None:
        if self._breach is None:
            self._breach = (
                f"node {self.owner!r}: neighbour {sender!r} sent iteration {iteration} while "
                f"{self._next} is next, beyond the buffer bound of {self.max_ahead} iterations"
            )
            logger.error("%s", self._breach)
        for slot in self._slots.values():
            slot.wake()

    def _raise_on_breach(self) -> None:
        if self._breach is not None:
            raise MailboxBreach(self._breach)

    def _drop(self, sender: str, iteration: int, why: str) -> None:
        self.dropped += 1
        logger.warning("node %r dropped the value of %r for iteration %d: %s",
                       self.owner, sender, iteration, why)

