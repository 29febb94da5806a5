"""The runtime: one anyio task group that owns every actor, on one transport.

Actors never outlive the runtime: leaving ``async with Runtime(...)`` closes
every inbox, cancels what is still running and unregisters the actors.
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from types import TracebackType
from typing import TypeVar

import anyio
from anyio.abc import TaskGroup

from peerflow.transport import Envelope, Transport

from ._actor import Actor

logger = logging.getLogger("peerflow.runtime")

A = TypeVar("A", bound=Actor)


class Runtime:
    """Runs actors on a transport.

    Args:
        transport: carries every envelope; the runtime does not close it.
        run_id: stamped on every envelope; a fresh one when None.
        dead_letter_limit: how many undeliverable envelopes to keep for inspection.
    """

    def __init__(self, transport: Transport, run_id: str | None = None,
                 dead_letter_limit: int = 1000) -> None:
        self.transport = transport
        self.run_id = run_id or uuid.uuid4().hex
        self.dead_letters: deque[tuple[Envelope, str]] = deque(maxlen=dead_letter_limit)
        self._dead_recipients: set[str] = set()
        self.actors: dict[str, Actor] = {}
        self._task_group: TaskGroup | None = None
        transport.on_dead_letter = self._on_dead_letter

    async def __aenter__(self) -> Runtime:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> bool | None:
        assert self._task_group is not None
        for actor in self.actors.values():
            actor._close_inbox()
        self._task_group.cancel_scope.cancel()
        try:
            return await self._task_group.__aexit__(exc_type, exc, tb)
        finally:
            for name in self.actors:
                self.transport.unregister(name)

    async def spawn(self, actor: A, name: str | None = None) -> A:
        """Register ``actor`` under ``name`` (or its own) and start it.

        Raises:
            ValueError: the name is empty or taken.
        """
        actor.name = name or actor.name
        if not actor.name:
            raise ValueError("an actor needs a name")
        if actor.name in self.actors:
            raise ValueError(f"an actor named {actor.name!r} is already running")
        if self._task_group is None:
            raise RuntimeError("the runtime is not open: use 'async with Runtime(...)'")
        self.transport.register(actor.name, actor._deliver)
        self.actors[actor.name] = actor
        await self._task_group.start(actor._main, self)
        return actor

    def _on_dead_letter(self, envelope: Envelope, reason: str) -> None:
        self.dead_letters.append((envelope, reason))
        first = envelope.recipient not in self._dead_recipients
        self._dead_recipients.add(envelope.recipient)
        # a lost node leaves a letter per queued message: one line says it
        logger.log(logging.WARNING if first else logging.DEBUG,
                   "dead letter %s %r from %r to %r: %s%s", envelope.kind, envelope.topic,
                   envelope.sender, envelope.recipient, reason,
                   " (later ones to it are logged at debug level)" if first else "")
