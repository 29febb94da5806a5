"""Per-iteration mailbox: one slot per iteration, one fresh event per slot.

``put`` is a plain call made by the transport's delivery path; ``gather`` is
awaited by the executor. A slot is freed as soon as it is gathered, so memory
stays flat over any number of iterations. Values for later iterations are
buffered up to ``max_ahead`` iterations; a sender beyond that is in breach.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio

from ._errors import MailboxBreach, SyncTimeout

logger = logging.getLogger("peerflow.mailbox")


class _Slot:
    __slots__ = ("values", "missing", "event")

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.missing: set[str] | None = None
        self.event: anyio.Event | None = None


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
        if sender not in self.senders:
            return self._drop(sender, iteration, "it is not an in-neighbour")
        if iteration < self._next:
            return self._drop(sender, iteration, f"iteration {iteration} is already gathered")
        if iteration >= self._next + self.max_ahead:
            return self._mark_breach(sender, iteration)
        slot = self._slots.get(iteration)
        if slot is None:
            slot = self._slots[iteration] = _Slot()
        if sender in slot.values:
            return self._drop(sender, iteration, "it is a duplicate")
        slot.values[sender] = value
        if slot.missing is not None:
            slot.missing.discard(sender)
            if not slot.missing and slot.event is not None:
                slot.event.set()

    async def gather(
        self, iteration: int, expected: frozenset[str] | set[str], timeout: float
    ) -> dict[str, Any]:
        """Return ``{sender: value}`` for ``iteration`` once every expected sender is in.

        Raises:
            SyncTimeout: some expected senders did not deliver within ``timeout``.
            MailboxBreach: a sender ran more than ``max_ahead`` iterations ahead.
        """
        self._raise_on_breach()
        slot = self._slots.get(iteration)
        if slot is None:
            slot = self._slots[iteration] = _Slot()
        missing = expected - slot.values.keys()
        if missing:
            await self._wait(iteration, slot, set(missing), timeout)
        del self._slots[iteration]
        self._next = iteration + 1
        return slot.values

    async def _wait(self, iteration: int, slot: _Slot, missing: set[str], timeout: float) -> None:
        slot.missing = missing
        event = slot.event = anyio.Event()
        with anyio.move_on_after(timeout / 2):
            await event.wait()
        if slot.missing:
            self._raise_on_breach()
            logger.warning(
                "node %r iteration %d: still waiting for %s after %.3gs",
                self.owner, iteration, sorted(slot.missing), timeout / 2,
            )
            with anyio.move_on_after(timeout - timeout / 2):
                await event.wait()
        self._raise_on_breach()
        if slot.missing:
            missing_now = sorted(slot.missing)
            raise SyncTimeout(
                f"node {self.owner!r} iteration {iteration}: no value from {missing_now} "
                f"within {timeout:g}s",
                missing_now,
            )

    def _mark_breach(self, sender: str, iteration: int) -> None:
        if self._breach is None:
            self._breach = (
                f"node {self.owner!r}: neighbour {sender!r} sent iteration {iteration} while "
                f"{self._next} is next, beyond the buffer bound of {self.max_ahead} iterations"
            )
            logger.error("%s", self._breach)
        for slot in self._slots.values():
            if slot.event is not None:
                slot.event.set()

    def _raise_on_breach(self) -> None:
        if self._breach is not None:
            raise MailboxBreach(self._breach)

    def _drop(self, sender: str, iteration: int, why: str) -> None:
        self.dropped += 1
        logger.warning(
            "node %r dropped the value of %r for iteration %d: %s", self.owner, sender, iteration, why
        )
