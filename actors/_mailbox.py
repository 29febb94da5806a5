"""Per-iteration mailbox: one dict of values per iteration, one waiter at a time.

``put`` is a plain call made by the transport's delivery path; ``gather`` is
awaited by the executor, one iteration after another. An iteration's values are
freed as soon as they are gathered, so memory stays flat over any number of
iterations. Values for later iterations are buffered up to ``max_ahead``
iterations; a sender beyond that is in breach.

This is the per-message path of every run, so it is kept to the floor's shape
(benchmarks/_floor.py: a per-iteration dict and a Future): a value touches the
mailbox, the iteration's dict and, for the iteration being gathered, a
countdown; nothing else is allocated per value. Why a bare asyncio Future and
one lazily re-armed loop timer, not ``anyio.Event`` in ``anyio.move_on_after``:
on CPython 3.11 that pair costs about 10 µs per wait, more than the floor's whole
node-iteration (benchmarks/latency.py). Cancellation still comes from the
caller's anyio scopes: cancelling the task cancels the awaited Future. The
runtime runs on anyio's asyncio backend (uvloop included), as ``simulate`` does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from ._errors import MailboxBreach, RunStopped, SyncTimeout

logger = logging.getLogger("peerflow.mailbox")

_NOTHING: frozenset[str] = frozenset()


class MailboxBase:
    """What every mailbox shares: its pending wait woken, or ended by ``stop``; a breach
    raised at the next read; drops counted and logged (``step`` names what a value is
    for: an iteration, a tick)."""

    __slots__ = ()
    step = "iteration"

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def stop(self) -> None:
        """End a pending wait with ``RunStopped``."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(RunStopped(self.owner))

    def _raise_on_breach(self) -> None:
        if self._breach is not None:
            raise MailboxBreach(self._breach)

    def _drop(self, sender: str, at: int, why: str) -> None:
        self.dropped += 1
        logger.warning("node %r dropped the value of %r for %s %d: %s",
                       self.owner, sender, self.step, at, why)


class IterationMailbox(MailboxBase):
    """Collects neighbours' values per iteration.

    Args:
        owner: name of the owning node, for log lines and errors.
        senders: the only names whose values are accepted (the in-neighbours).
        max_ahead: how many iterations beyond the next one to gather may be buffered.
    """

    __slots__ = ("owner", "senders", "max_ahead", "dropped", "_slots", "_next", "_breach",
                 "_gathering", "_expected", "_awaited", "_waiter", "_deadline", "_timer",
                 "_timer_loop", "_timer_at", "_overdue")

    def __init__(self, owner: str, senders: frozenset[str] | set[str], max_ahead: int = 1000):
        if max_ahead < 1:
            raise ValueError(f"max_ahead must be >= 1, got {max_ahead}")
        self.owner = owner
        self.senders = frozenset(senders)
        self.max_ahead = max_ahead
        self.dropped = 0
        self._slots: dict[int, dict[str, Any]] = {}
        self._next = 0
        self._breach: str | None = None
        self._gathering = -1  # the iteration ``gather`` waits for, if any
        self._expected = _NOTHING  # its expected senders
        self._awaited = 0  # how many of them are still missing
        self._waiter: asyncio.Future[None] | None = None
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None  # the loop it runs on
        self._timer_at = 0.0  # when it fires
        self._overdue = -1  # the iteration whose wait has outlasted half its timeout

    @property
    def buffered(self) -> int:
        """Number of values held, over all iterations."""
        return sum(len(values) for values in self._slots.values())

    def put(self, sender: str, iteration: int, value: Any) -> None:
        """Accept ``sender``'s value for ``iteration``; never blocks, never raises.

        Values from non-neighbours, for iterations already gathered, and
        duplicates are dropped and logged. A value too far ahead marks a breach
        that the next ``gather`` raises.
        """
        values = self._slots.get(iteration)
        if values is None:  # a new iteration: is it inside the window?
            next_ = self._next
            if sender not in self.senders or not next_ <= iteration < next_ + self.max_ahead:
                return self._refuse(sender, iteration)
            values = self._slots[iteration] = {}
        elif sender in values or sender not in self.senders:
            return self._refuse(sender, iteration)
        values[sender] = value
        if iteration == self._gathering and sender in self._expected:
            self._awaited -= 1
            if not self._awaited:
                self._wake()

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
        values = self._slots.get(iteration)
        if values is None:
            values = self._slots[iteration] = {}
        awaited = (len(expected) - len(values) if expected is self.senders
                   else len(expected - values.keys()))
        if awaited:
            self._gathering, self._expected, self._awaited = iteration, expected, awaited
            await self._arm(timeout / 2)
            if self._awaited or self._breach is not None:
                await self._wait_longer(iteration, values, timeout)
            self._gathering, self._expected, self._waiter = -1, _NOTHING, None
        del self._slots[iteration]
        self._next = iteration + 1
        return values

    async def _wait_longer(self, iteration: int, values: dict[str, Any], timeout: float) -> None:
        """Half the timeout has passed: warn, wait the other half, raise what is still wrong."""
        self._raise_on_breach()
        self._overdue = iteration
        logger.warning("node %r iteration %d: still waiting for %s after %.3gs",
                       self.owner, iteration, self._missing(values), timeout / 2)
        await self._arm(timeout - timeout / 2)
        self._raise_on_breach()
        if self._awaited:
            missing = self._missing(values)
            raise SyncTimeout(f"node {self.owner!r} iteration {iteration}: no value from "
                              f"{missing} within {timeout:g}s", missing)

    def waiting_on(self) -> tuple[int | None, list[str], bool]:
        """What ``gather`` waits for now: the iteration, the senders still missing, and
        whether the wait has outlasted half its timeout. A wait that timed out or was
        cancelled still counts: it is where its node got stuck.
        """
        values = self._slots.get(self._gathering)
        if self._gathering < 0 or values is None:
            return None, [], False
        return self._gathering, self._missing(values), self._overdue == self._gathering

    def _missing(self, values: dict[str, Any]) -> list[str]:
        return sorted(self._expected - values.keys())

    # -- waking the gatherer: by the last value, a breach, or the timer ---------------------
    def _arm(self, delay: float) -> asyncio.Future[None]:
        """A Future that the last awaited value resolves, or the timer in ``delay`` seconds.

        Awaited directly by the caller (no coroutine of its own: this is the hot
        path). One loop timer serves every wait, re-armed lazily: setting the
        deadline is one assignment; the timer stays scheduled, and when it fires
        before the current deadline it moves itself there. A timer per wait would
        cost a heap push and a cancel every iteration. Only a deadline earlier than
        the timer (a shorter timeout than the last one) moves the timer at once.
        """
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        deadline = self._deadline = loop.time() + delay
        if self._timer is None or self._timer_loop is not loop or deadline < self._timer_at:
            self._schedule(loop)  # none, on a loop gone by, or too late
        return waiter

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None and self._timer_loop is loop:  # (a gone loop's is void)
            self._timer.cancel()
        self._timer = loop.call_at(self._deadline, self._on_timer, loop)
        self._timer_loop, self._timer_at = loop, self._deadline

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        if self._waiter is None or self._waiter.done():
            return  # nothing waits: lapse until the next ``_arm``
        if loop.time() >= self._deadline:
            self._wake()
        else:
            self._schedule(loop)


    # -- refusals ----------------------------------------------------------------------------
    def _refuse(self, sender: str, iteration: int) -> None:
        if sender not in self.senders:
            return self._drop(sender, iteration, "it is not an in-neighbour")
        if iteration < self._next:
            return self._drop(sender, iteration, f"iteration {iteration} is already gathered")
        if iteration in self._slots:
            return self._drop(sender, iteration, "it is a duplicate")
        return self._mark_breach(sender, iteration)

    def _mark_breach(self, sender: str, iteration: int) -> None:
        if self._breach is None:
            self._breach = (
                f"node {self.owner!r}: neighbour {sender!r} sent iteration {iteration} while "
                f"{self._next} is next, beyond the buffer bound of {self.max_ahead} iterations"
            )
            logger.error("%s", self._breach)
        self._wake()



class ScheduledMailbox(IterationMailbox):
    """A mailbox on a time-varying network: a value for iteration t is accepted only from
    the in-neighbours of t (``phases[t mod period]``); any other is dropped and logged.

    Args:
        owner: name of the owning node.
        phases: the in-neighbours of each iteration of the period.
        max_ahead: as ``IterationMailbox``'s.
    """

    __slots__ = ("phases",)

    def __init__(self, owner: str, phases: Sequence[frozenset[str]], max_ahead: int = 1000):
        if not phases:
            raise ValueError("a scheduled mailbox needs at least one phase")
        super().__init__(owner, frozenset().union(*phases), max_ahead)
        self.phases = tuple(phases)

    def put(self, sender: str, iteration: int, value: Any) -> None:
        """As ``IterationMailbox.put``, and a sender that is an in-neighbour at other
        iterations but not at ``iteration`` is dropped."""
        phases = self.phases
        if sender in self.senders and sender not in phases[iteration % len(phases)]:
            return self._drop(sender, iteration, f"it is not an in-neighbour at iteration "
                                                 f"{iteration}")
        return super().put(sender, iteration, value)
