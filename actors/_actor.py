"""Actors: a name, a mailbox and one task that handles its messages.

Replies and whatever a subclass claims on the delivery path (``receive_now``: aborts;
an executor's per-iteration values) are handled without a task switch; everything else
queues for the actor's task, which handles one message at a time. Pending asks
fail with ``ActorDead`` when the actor stops. The actor's task also owns a task
group for what lives exactly as long as the actor (``run_background``): started
after ``on_start``, still running during ``on_stop``, cancelled right after it.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup, TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from peerflow.transport import Envelope, new_message_id

from ._errors import ActorDead, ActorError, AskTimeout, RemoteError, RunStopped

if TYPE_CHECKING:
    from ._runtime import Runtime

logger = logging.getLogger("peerflow.actor")


class _PendingReply:
    """An ask awaiting its reply; one of an ``ask_each`` reports to its ``_Replies``."""

    __slots__ = ("event", "envelope", "recipient", "replies")

    def __init__(self, recipient: str = "", replies: _Replies | None = None) -> None:
        self.event = anyio.Event()
        self.envelope: Envelope | None = None
        self.recipient = recipient
        self.replies = replies

    def resolve(self, envelope: Envelope | None) -> None:
        """The reply came (None: the asker stopped first)."""
        self.envelope = envelope
        if self.replies is None:
            self.event.set()
        else:
            self.replies.settle(self.recipient, envelope)


class _Replies:
    """The replies to one ``ask_each``: ``enough`` once ``need`` answered or every ask
    settled, ``everyone`` once every ask settled."""

    __slots__ = ("asker", "need", "total", "answers", "failures", "enough", "everyone")

    def __init__(self, asker: str, need: int, total: int) -> None:
        self.asker, self.need, self.total = asker, need, total
        self.answers: dict[str, Any] = {}
        self.failures: dict[str, str] = {}
        self.enough = anyio.Event()
        self.everyone = anyio.Event()
        self._check()

    def settle(self, recipient: str, envelope: Envelope | None) -> None:
        try:
            self.answers[recipient] = _reply_value(envelope, self.asker)
        except ActorError as exc:
            self.failures[recipient] = str(exc)
        self._check()

    def _check(self) -> None:
        if len(self.answers) + len(self.failures) == self.total:
            self.everyone.set()
        if len(self.answers) >= self.need or self.everyone.is_set():
            self.enough.set()


class Actor:
    """Base class of every actor.

    Subclasses override ``handle`` (and optionally the lifecycle hooks). An actor
    is started by ``Runtime.spawn`` and stopped when the runtime closes.

    Args:
        name: the actor's address; the runtime may assign one when None.
    """

    def __init__(self, name: str | None = None) -> None:
        self.name = name or ""
        self._runtime: Runtime | None = None
        self._pending: dict[str, _PendingReply] = {}
        self._inbox_send: MemoryObjectSendStream[Envelope] | None = None
        self._inbox_receive: MemoryObjectReceiveStream[Envelope] | None = None

    # -- lifecycle hooks --------------------------------------------------
    async def on_start(self) -> None:
        """Called in the actor's task before it handles any message."""

    async def run_background(self, task_group: TaskGroup) -> None:
        """Start tasks that live as long as the actor in ``task_group`` (owned by the
        actor's task): called after ``on_start``, before the first message; the tasks
        are cancelled when the actor stops, after ``on_stop``. ``task_group.start``
        makes the actor count as started only once they are ready.
        """

    async def on_stop(self) -> None:
        """Called when the actor stops, whatever the reason (background tasks still run)."""

    async def on_failure(self, exc: BaseException) -> None:
        """Called when handling a tell raised ``exc``."""
        logger.error("actor %r failed: %r", self.name, exc)

    async def handle(self, envelope: Envelope) -> Any:
        """Handle a tell or an ask; the return value answers an ask.

        Raises:
            Exception: anything raised answers the ask with an error.
        """
        raise NotImplementedError(f"actor {self.name!r} has no handler for {envelope.topic!r}")

    def receive_now(self, envelope: Envelope) -> bool:
        """Claim an envelope on the delivery path (no task switch); True if consumed."""
        return False

    # -- messaging --------------------------------------------------------
    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise ActorDead(f"actor {self.name!r} is not running")
        return self._runtime

    def tell(self, recipient: str, topic: str, body: Any = None, *, iteration: int | None = None,
             kind: str = "tell") -> None:
        """Send a message and forget it."""
        runtime = self.runtime
        runtime.transport.send(Envelope(kind, self.name, recipient, topic, body,  # type: ignore[arg-type]
                                        iteration, runtime.run_id, new_message_id()))

    async def ask(self, recipient: str, topic: str, body: Any = None, *,
                  timeout: float | None) -> Any:
        """Send a message and await its reply.

        Raises:
            AskTimeout: no reply within ``timeout`` seconds.
            RemoteError: the recipient failed handling it.
            ActorDead: this actor stopped while waiting.
        """
        runtime = self.runtime
        message_id = new_message_id()
        pending = self._pending[message_id] = _PendingReply()
        try:
            runtime.transport.send(Envelope("ask", self.name, recipient, topic, body, None,
                                            runtime.run_id, message_id))
            with anyio.fail_after(math.inf if timeout is None else timeout):
                await pending.event.wait()
        except TimeoutError:
            raise AskTimeout(_no_reply(self.name, recipient, topic, timeout)) from None
        finally:
            del self._pending[message_id]
        return _reply_value(pending.envelope, self.name)

    async def ask_each(self, topic: str, bodies: Mapping[str, Any], *, timeout: float | None,
                       need: int | None = None, linger: float = 0.0
                       ) -> tuple[dict[str, Any], dict[str, str]]:
        """Ask every recipient of ``bodies`` at once, each with its body; await the replies.

        One wait for them all, not a task per recipient: at 10,000 nodes, cancelling
        10,000 waiting tasks is what made stopping a run take seconds.

        Returns:
            ``({recipient: answer}, {recipient: why it failed})``, once ``need``
            (default: all) answered and then up to ``linger`` seconds more for the rest,
            once every ask settled, or once ``timeout`` passed (the unanswered then fail
            with a timeout). Recipients in neither were not waited for.
        """
        runtime = self.runtime
        replies = _Replies(self.name, len(bodies) if need is None else need, len(bodies))
        asked: list[str] = []
        try:
            for recipient, body in bodies.items():
                message_id = new_message_id()
                asked.append(message_id)
                self._pending[message_id] = _PendingReply(recipient, replies)
                runtime.transport.send(Envelope("ask", self.name, recipient, topic, body, None,
                                                runtime.run_id, message_id))
            with anyio.move_on_after(math.inf if timeout is None else timeout) as scope:
                await replies.enough.wait()
                with anyio.move_on_after(linger):
                    await replies.everyone.wait()
        finally:
            for message_id in asked:
                del self._pending[message_id]
        if scope.cancelled_caught:
            for recipient in bodies.keys() - replies.answers.keys() - replies.failures.keys():
                replies.failures[recipient] = _no_reply(self.name, recipient, topic, timeout)
        return replies.answers, replies.failures

    # -- delivery and the actor's task ------------------------------------
    def _deliver(self, envelope: Envelope) -> None:
        if envelope.kind in ("reply", "error"):
            pending = self._pending.get(envelope.reply_to or "")
            if pending is None:
                logger.warning("actor %r dropped a reply to unknown ask %r", self.name,
                               envelope.reply_to)
                return
            pending.resolve(envelope)
        elif not self.receive_now(envelope) and self._inbox_send is not None:
            self._inbox_send.send_nowait(envelope)

    async def _main(self, runtime: Runtime, *, task_status: TaskStatus[None]) -> None:
        self._runtime = runtime
        self._inbox_send, self._inbox_receive = anyio.create_memory_object_stream[Envelope](
            math.inf)
        # A task group only for actors that start background tasks: at 10,000 actors,
        # one group each makes cancelling the runtime several times slower.
        background = anyio.create_task_group() if self._has_background() else None
        if background is not None:
            await background.__aenter__()
        try:
            async with self._inbox_receive:
                await self.on_start()
                if background is not None:
                    await self.run_background(background)
                task_status.started()
                with contextlib.suppress(RunStopped):  # told to stop: end quietly
                    async for envelope in self._inbox_receive:
                        await self._dispatch(envelope)
        finally:
            self._fail_pending()
            if type(self).on_stop is not Actor.on_stop:  # a scope each costs 10,000 nodes' stop
                with anyio.CancelScope(shield=True):
                    await self.on_stop()
            if background is not None:  # closed without the loop's error: an error
                background.cancel_scope.cancel()  # of on_start comes out as it is
                await background.__aexit__(None, None, None)

    def _has_background(self) -> bool:
        return type(self).run_background is not Actor.run_background

    def _close_inbox(self) -> None:
        if self._inbox_send is not None:
            self._inbox_send.close()

    async def _dispatch(self, envelope: Envelope) -> None:
        try:
            value = await self.handle(envelope)
        except Exception as exc:
            if envelope.kind == "ask":
                self._answer(envelope, "error", _describe(exc))
            else:
                await self.on_failure(exc)
            return
        if envelope.kind == "ask":
            self._answer(envelope, "reply", value)

    def _answer(self, ask: Envelope, kind: str, body: Any) -> None:
        runtime = self.runtime
        runtime.transport.send(Envelope(kind, self.name, ask.sender, ask.topic, body,  # type: ignore[arg-type]
                                        ask.iteration, runtime.run_id, new_message_id(), ask.id))

    def _fail_pending(self) -> None:
        for pending in list(self._pending.values()):
            pending.resolve(None)


def _reply_value(envelope: Envelope | None, asker: str) -> Any:
    if envelope is None:
        raise ActorDead(f"actor {asker!r} stopped while waiting for a reply")
    if envelope.kind == "error":
        raise RemoteError(f"{envelope.sender!r} failed handling {envelope.topic!r}: "
                          f"{envelope.body}")
    return envelope.body


def _no_reply(asker: str, recipient: str, topic: str, timeout: float | None) -> str:
    return f"{asker!r} got no reply from {recipient!r} to {topic!r} within {timeout:g}s"


def _describe(exc: BaseException) -> str:
    """One line naming an exception: its own message for ours, type and message otherwise."""
    if isinstance(exc, ActorError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
