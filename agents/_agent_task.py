"""A task the node has handed to its agent, and how far it got.

A task moves through three steps, each an event that is set once: the link
received it (the agent's "received": no more resends), the trainer took it
(``get_task`` returned it: "taken"), and its result came ("done"). A failure, or a
result whose code is not OK, settles the task, which sets all three, so every wait
on it ends. ``progress``
says where a task stalled, for the error that names the agent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from ._agent_link import LinkSettings
from ._agent_protocol import AgentError, AgentFailed
from ._flare_defs import RC, Task, TaskResult


@dataclass(slots=True)
class OpenTask:
    """One task in flight: its encoded frame, its steps and, once settled, its outcome."""

    task: Task
    frame: bytes
    sent_at: float = field(default_factory=anyio.current_time)
    received: anyio.Event = field(default_factory=anyio.Event)
    taken: anyio.Event = field(default_factory=anyio.Event)
    done: anyio.Event = field(default_factory=anyio.Event)
    taken_at: float | None = None
    result: Any = None  # a TaskResult once settled without a failure
    failure: AgentError | None = None

    def take(self) -> None:
        """The trainer took the task (and so the link received it)."""
        if not self.taken.is_set():
            self.taken_at = anyio.current_time()
            self.received.set()
            self.taken.set()

    def answer(self, result: TaskResult, agent: str) -> None:
        """Settle with the agent's result, or, if its code is not OK, fail naming ``agent``."""
        if result.return_code == RC.OK:
            self.settle(result)
            return
        detail = f": {result.data}" if isinstance(result.data, str) and result.data else ""
        self.settle(failure=AgentFailed(f"{agent} returned {result.return_code} for task "
                                        f"{self.task.task_name!r}{detail}"))

    def settle(self, result: TaskResult | None = None, failure: AgentError | None = None) -> None:
        """End the task with its result or a failure; the first outcome stays."""
        if not self.done.is_set():
            self.result, self.failure = result, failure
            self.received.set()
            self.taken.set()
            self.done.set()

    async def follow(self, settings: LinkSettings, send: Callable[[], None],
                     watch: Callable[[], None]) -> str | None:
        """Send the task, then wait for each step within ``settings``' bounds; return what
        the agent did not do in time (None: the task is settled). ``watch``: as for ``wait``."""
        wait = math.inf if settings.task_wait_time is None else settings.task_wait_time
        read = min(settings.read_timeout, wait)
        take, done = self.sent_at + read, self.sent_at + wait
        period = min(settings.heartbeat_interval, settings.heartbeat_timeout / 4)
        name = self.task.task_name
        if not await self.deliver(send, take, settings.resend_interval, settings.max_resends,
                                  watch, period):
            return f"did not receive task {name!r} after {settings.max_resends} resends"
        if not await self.wait(self.taken, take, watch, period):
            return f"did not take task {name!r} within {read:g} s"
        if not await self.wait(self.done, done, watch, period):
            return f"gave no result for task {name!r} within {wait:g} s"
        return None

    async def deliver(self, send: Callable[[], None], deadline: float, resend_interval: float,
                      max_resends: int | None, watch: Callable[[], None], period: float) -> bool:
        """Send until the link has the task or ``deadline`` passes; False if ``max_resends``
        ran out first. ``watch`` runs meanwhile, as for ``wait``."""
        sends = 0
        while True:
            send()
            sends += 1
            resend_at = min(anyio.current_time() + resend_interval, deadline)
            if (await self.wait(self.received, resend_at, watch, period)
                    or anyio.current_time() >= deadline):  # the wait for "taken" says more
                return True
            if max_resends is not None and sends > max_resends:
                return False

    async def wait(self, event: anyio.Event, deadline: float, watch: Callable[[], None],
                   period: float) -> bool:
        """Wait until ``deadline`` (``anyio.current_time``) for ``event``; True if set.

        ``watch`` runs every ``period`` seconds meanwhile; it may settle the task
        (an agent gone silent), which sets every event of it.
        """
        with anyio.move_on_after(deadline - anyio.current_time()):
            while not event.is_set():
                with anyio.move_on_after(period):
                    await event.wait()
                watch()
        return event.is_set()

    def progress(self, heard_at: float) -> str:
        """Where the task is, and when the agent was last heard (``anyio.current_time``)."""
        now = anyio.current_time()
        if self.taken_at is not None:
            step = f"it took the task {now - self.taken_at:.1f} s ago"
        elif self.received.is_set():
            step = "it received the task, but get_task() was not called"
        else:
            step = "the task did not reach it"
        return f"{step}; last heard {now - heard_at:.1f} s ago"
