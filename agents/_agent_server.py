"""The node side of an agent link: listen, admit the agent with the right id, relay tasks.

One ``AgentServer`` per node, on its own TCP address (mutual TLS with the site's
startup kit in secure mode: ``_agent_tls``). A connection must say hello with the
expected ``agent_id`` (and, in secure mode, the site's trainer certificate), else it
is refused with the reason on both sides. One connection is live at a time; an agent
that lost it may reconnect within ``heartbeat_timeout``, and gets its open task again.

``run_task_result`` hands one task to the agent and returns its result. Each wait
is bounded (``LinkSettings``): the agent connects within ``heartbeat_timeout``, takes
the task within ``peer_read_timeout`` (resent until the link has it) and answers
within ``task_wait_time``, never silent for ``heartbeat_timeout``. A result whose
code is not OK fails the task, and an agent that said goodbye is gone at once.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import uuid
from functools import partial
from typing import Any

import anyio
from anyio.abc import ByteStream, SocketAttribute, TaskStatus

from peerflow.transport import Envelope, Hello, new_message_id

from . import _agent_protocol as proto
from . import _handshake as handshake
from ._agent_link import Link, LinkSettings, encode_frame, format_address, parse_address
from ._agent_protocol import AgentError, AgentGone, Task, TaskResult
from ._agent_task import OpenTask
from ._agent_tls import AgentTls
from ._states import Conversation, Message, Role

logger = logging.getLogger("peerflow.agents")

_NEVER = "it never connected"


class AgentServer:
    """The node side of one agent link.

    Args:
        agent_id: the id the agent must present.
        listen: where to listen, ``"host:port"``; port 0 picks a free port.
        settings: the waits and bounds; NVFlare's defaults when None.
        tls: secure mode: the site's ``AgentTls`` (``AgentTls.load``); None: plain TCP.

    Attributes:
        node, run: its node, and the run the agent's link is bound to (set by ``serve``).
        address: ``(host, port)`` once listening.
        metrics: what the agent logged with ``log_metric``, in order.
        refused: why each refused connection was refused.
        answered: how many tasks the agent has answered.
    """

    def __init__(self, agent_id: str, listen: str | tuple[str, int] = "127.0.0.1:0",
                 settings: LinkSettings | None = None, *,
                 tls: AgentTls | None = None) -> None:
        if not agent_id:
            raise ValueError("an agent needs a non-empty agent_id")
        self.agent_id = agent_id
        self.listen = parse_address(listen)
        self.settings = settings or LinkSettings()
        self.tls = tls
        self.node = ""
        self.run = ""
        self.peer: str | None = None  # the connected agent's address
        self.address: tuple[str, int] | None = None
        self.metrics: list[Any] = []
        self.refused: list[str] = []
        self.answered = 0
        self.connected_since: float | None = None
        self.last_heartbeat: float | None = None
        self._link: Link | None = None
        self._changed = anyio.Event()  # set (and replaced) when an agent connects or is lost
        self._lost: str | None = None
        self._listening = anyio.Event()
        self._heard_at = -math.inf
        self._left = _NEVER
        self._goodbye: str | None = None
        self._open: OpenTask | None = None
        self._acked: tuple[Envelope, ...] = ()  # the last result's acknowledgement

    # -- serving ----------------------------------------------------------
    async def serve(self, node: str, run: str | None = None, *,
                    task_status: TaskStatus[tuple[str, int]] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen for ``node``'s agent, bound to ``run`` (None: a fresh one), until
        cancelled; report the address once listening.

        Raises:
            OSError: cannot listen on the address.
        """
        self.node, self.run = node, run or uuid.uuid4().hex
        async with await handshake.listen(self.listen, node, self.agent_id) as listener:
            self.address = tuple(listener.extra(SocketAttribute.local_address)[:2])
            self._listening.set()
            task_status.started(self.address)
            await listener.serve(self._on_connection)

    def secure(self, tls: AgentTls) -> None:
        """Serve in secure mode (see ``tls``); only before ``serve``."""
        assert self.address is None, "secure() once the server listens"
        self.tls = tls

    async def wait_listening(self) -> tuple[str, int]:
        """Return the address once the server listens."""
        await self._listening.wait()
        assert self.address is not None
        return self.address

    async def say_goodbye(self, reason: str, *, aborted: bool = False) -> None:
        """Tell a connected agent the job is over (or aborted); best effort, within 1 s."""
        link, goodbye = self._link, proto.goodbye(self.node, self.agent_id, reason, aborted=aborted)
        if link is None:
            return
        with anyio.move_on_after(1.0, shield=True), contextlib.suppress(*handshake.LOST):
            await link.write_last(*self._acked, goodbye)  # the last ack again: it may be queued

    def lose(self, reason: str) -> AgentError:
        """Give the agent up (its process died, say): its open task fails now, and so does
        the next one unless an agent connects again. Return the error, naming the agent."""
        self._lost = f"{reason} ({self.absence()})"
        error = self._gone(f"is gone: {self._lost}")
        if self._open is not None:
            self._open.settle(failure=error)
        self._notify()
        return error

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def absence(self) -> str:
        """How far the agent got and how it left (or that it is still connected), and
        the last refusal."""
        refused = f"; refused: {self.refused[-1]}" if self.refused else ""
        if self.answered == 0 and self._left == _NEVER and self._link is None:
            return f"{_NEVER}{refused}"
        left = "was connected" if self._link is not None else f"then {self._left}"
        return f"it answered {self.answered} tasks and {left}{refused}"

    def pending(self) -> str | None:
        """What the agent owes: the open task and how far it got; None if no task is open."""
        open_task = self._open
        if open_task is None or open_task.done.is_set():
            return None
        return str(self._gone(f"has not answered task {open_task.task.task_name!r} "
                              f"({open_task.progress(self._heard_at)})"))

    def status(self) -> dict[str, Any]:
        """One row for ``peerflow status``: which agent is connected to which node, from
        where, over TLS or not, since when, and its last heartbeat."""
        return {"node": self.node, "agent_id": self.agent_id,
                "address": format_address(self.address),
                "secure": self.tls is not None, "peer": self.peer,
                "connected": self._link is not None, "connected_since": self.connected_since,
                "last_heartbeat": self.last_heartbeat,
                "task": None if self._open is None else self._open.task.task_name,
                "refused": len(self.refused), "metrics": len(self.metrics)}

    async def _on_connection(self, stream: ByteStream) -> None:
        remote = format_address(stream.extra(SocketAttribute.remote_address)[:2])
        secured, refusal = ((stream, None) if self.tls is None else
                            await self.tls.accept(stream, self.settings.heartbeat_timeout))
        if secured is None:  # the TLS handshake failed
            self.refused.append(f"node {self.node!r} refused a connection from {remote}: {refusal}")
            return logger.warning("%s", self.refused[-1])
        link, wire = Link(secured), Conversation(Role.NODE)
        try:
            request, refusal = await handshake.answer(
                link, wire, self.node, self.agent_id, self.run, self.settings,
                self._link is not None, refusal)
            if refusal is not None:
                self.refused.append(refusal)
            if request is not None:
                self.peer = remote
                self._attach(link, request)
                why = "the node stopped"
                try:
                    why = await link.run(partial(self._on_envelope, wire),
                                         partial(proto.heartbeat, self.node, self.agent_id),
                                         self.settings.heartbeat_interval,
                                         self.settings.heartbeat_timeout)
                finally:
                    self._detach(link, why)
        finally:
            with anyio.CancelScope(shield=True):
                await link.aclose()

    def _attach(self, link: Link, request: Hello) -> None:
        self._link, self.connected_since, self._goodbye = link, time.time(), None
        self._heard()
        self._lost = None
        self._notify()
        logger.info("agent %r connected to node %r", self.agent_id, self.node)
        open_task = self._open
        if open_task is not None and request.settings.get("task") != open_task.task.task_id:
            link.send_frame(open_task.frame)  # the agent lost it: a new process, say

    def _detach(self, link: Link, why: str) -> None:
        if self._link is link:
            self._link, self.connected_since, self.peer = None, None, None
            self._left = (f"its link ended: {why}" if self._goodbye is None
                          else f"it stopped ({self._goodbye})")
            logger.info("agent %r left node %r: %s", self.agent_id, self.node, why)

    def _heard(self) -> None:
        self._heard_at, self.last_heartbeat = anyio.current_time(), time.time()

    # -- what the agent sends ---------------------------------------------
    def _on_envelope(self, wire: Conversation, envelope: Envelope) -> None:
        self._heard()
        message = wire.receive(envelope)
        if message is Message.RESULT:  # a resent one too; queued before its task's waiter wakes
            self._acked = (proto.accepted(self.node, self.agent_id, envelope.reply_to),)
            self._send_now(encode_frame(self._acked[0]))
        open_task = self._open
        if message is Message.METRIC:
            self.metrics.append(envelope.body)
        elif message is Message.CLOSE:
            self._on_agent_stop(str(envelope.body))
        elif message is Message.HEARTBEAT:
            return
        elif open_task is None or envelope.reply_to != open_task.task.task_id:
            logger.debug("node %r dropped a stale %r from its agent", self.node, envelope.topic)
        elif message is Message.RECEIVED:
            open_task.received.set()
        elif message is Message.TAKEN:
            open_task.take()
        else:
            self.answered += 1
            open_task.answer(proto.read_result(envelope),
                             f"agent {self.agent_id!r} of node {self.node!r}")

    def _on_agent_stop(self, reason: str) -> None:
        self._goodbye = reason
        self._lost = f"it stopped ({reason}) after answering {self.answered} tasks"
        if self._open is not None:
            self._open.settle(failure=self._gone(f"stopped during task "
                                                 f"{self._open.task.task_name!r} ({reason})"))

    def _gone(self, what: str) -> AgentGone:
        return AgentGone(f"agent {self.agent_id!r} of node {self.node!r} {what}")

    # -- tasks ------------------------------------------------------------
    async def run_task(self, name: str, data: Any) -> Any:
        """``run_task_result``, returning the result's data only."""
        return (await self.run_task_result(name, data)).data

    async def run_task_result(self, name: str, data: Any,
                              meta: dict[str, Any] | None = None) -> TaskResult:
        """Hand a task (its data and meta) to the agent and return its whole result.

        Raises:
            AgentGone: the agent missed a bound (connect, take, answer, heartbeat) or stopped.
            AgentFailed: the result's return code is not ``RC.OK``.
            TypeError: ``data`` holds something the codec cannot carry.
        """
        task = Task(name, new_message_id(), data, dict(meta or {}))
        frame = encode_frame(proto.task_message(self.node, self.agent_id, task))
        await self._wait_for_agent()
        open_task = self._open = OpenTask(task, frame)
        try:
            late = await open_task.follow(self.settings, partial(self._send_now, frame),
                                          partial(self._watch, open_task))
        finally:
            self._open = None
        if late is not None:
            raise self._gone(f"{late} ({open_task.progress(self._heard_at)})")
        if open_task.failure is not None:
            raise open_task.failure
        return open_task.result

    async def _wait_for_agent(self) -> None:
        timeout = self.settings.heartbeat_timeout
        with anyio.move_on_after(timeout):
            while self._link is None and self._lost is None:
                await self._changed.wait()
        if self._lost is not None:
            raise self._gone(f"is gone: {self._lost}")
        if self._link is None:
            raise self._gone(f"is not connected at {format_address(self.address)} after "
                             f"{timeout:g} s: {self.absence()}")

    def _send_now(self, frame: bytes) -> None:
        if self._link is not None:  # else a task goes out when the agent reconnects
            with contextlib.suppress(anyio.ClosedResourceError):
                self._link.send_frame(frame)

    def _watch(self, open_task: OpenTask) -> None:
        """Fail the task if the agent has been silent for ``heartbeat_timeout``."""
        silent = anyio.current_time() - self._heard_at
        if silent > self.settings.heartbeat_timeout:
            why = "" if self._link is not None else f" ({self._left})"
            open_task.settle(failure=self._gone(f"is gone: nothing heard for {silent:.1f} s{why}"))
