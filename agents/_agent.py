"""The agent side: ``AsyncAgent``, and ``Agent``, its blocking facade for synchronous trainers.

A trainer (any process, often a plain script) connects to its node's agent
address, presents its ``agent_id``, then loops ``get_task`` / compute /
``submit_result`` until ``get_task`` raises ``AgentClosed``. The call order is
checked by the protocol's state table (``_states``). Heartbeats run in
the link's own task, so a long computation never makes the agent look dead:
``Agent`` (``_agent_blocking``) runs the event loop in an anyio ``BlockingPortal``
thread while the trainer computes in its own. A lost connection is retried until the node has
been silent for ``heartbeat_timeout``; a task resent meanwhile is not handed
out twice, and the last result is sent again in case it was lost. A node that
refuses the connection after it was once admitted is gone at once: its listener
lives as long as its process, so nobody listening means the process ended.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import ssl
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from peerflow.transport import DecodeError, Envelope, HandshakeError

from . import _agent_protocol as proto
from . import _handshake as handshake
from ._agent_env import ADDRESS_ENV, AGENT_ID_ENV, HEARTBEAT_TIMEOUT_ENV, environment_tls_context
from ._agent_link import Link, encode_frame, format_address, parse_address
from ._agent_protocol import RC, AgentClosed, AgentProtocolError, Task
from ._states import AgentCalls, Call, Conversation, Message, Role, State

logger = logging.getLogger("peerflow.agents")

_RETRY = (OSError, TimeoutError, anyio.EndOfStream, anyio.BrokenResourceError, DecodeError,
          AgentProtocolError, HandshakeError)


class AsyncAgent:
    """An external program's link to its node (NVFlare's FlareAgent, async).

    Use ``async with AsyncAgent() as agent:`` or ``start()``/``stop()`` from one task.
    Heavy synchronous work belongs in a thread (or use ``Agent``), not in the loop.

    Args:
        address: the node's agent address ``"host:port"``; default ``$PEERFLOW_AGENT_ADDRESS``.
        agent_id: this agent's id; default ``$PEERFLOW_AGENT_ID``.
        heartbeat_timeout: how long ``start`` waits for the node (default
            ``$PEERFLOW_AGENT_HEARTBEAT_TIMEOUT`` or 60 s); once admitted, the node's
            heartbeat settings apply to both sides.
        resend_interval: seconds between connection attempts.
        ssl_context: secure mode: mutual TLS with this context (``trainer_tls_context``);
            default: from ``$PEERFLOW_AGENT_WORKSPACE`` if set, else plain TCP.

    Raises:
        ValueError: no address or agent id, given or in the environment.
        AgentKitError: ``$PEERFLOW_AGENT_WORKSPACE`` holds no valid startup kit.
    """

    def __init__(self, address: str | tuple[str, int] | None = None,
                 agent_id: str | None = None, *, heartbeat_timeout: float | None = None,
                 resend_interval: float = 0.2, ssl_context: ssl.SSLContext | None = None) -> None:
        address = address or os.environ.get(ADDRESS_ENV)
        self.agent_id = agent_id or os.environ.get(AGENT_ID_ENV, "")
        if not address or not self.agent_id:
            raise ValueError(f"an agent needs its node's address and its id: pass them or set "
                             f"{ADDRESS_ENV} and {AGENT_ID_ENV}")
        self.address = parse_address(address)
        self.heartbeat_timeout = heartbeat_timeout or float(
            os.environ.get(HEARTBEAT_TIMEOUT_ENV, "60"))
        self.heartbeat_interval = self.heartbeat_timeout / 4
        self.resend_interval = resend_interval
        self.ssl_context = ssl_context or environment_tls_context()
        self.node: str | None = None
        self.run: str | None = None  # the node's run, once admitted
        self.task: Task | None = None
        self.calls = AgentCalls()
        self._tasks_in: MemoryObjectSendStream[Task] | None = None  # from start() to stop()
        self._tasks: MemoryObjectReceiveStream[Task] | None = None
        self._link: Link | None = None
        self._wire = Conversation(Role.AGENT)  # the link's, fresh for each connection
        self._group: TaskGroup | None = None
        self._seen: str | None = None  # id of the last task received: a resend is not new
        self._last_result: bytes | None = None  # sent again after a reconnect

    # -- the trainer's calls ----------------------------------------------
    async def start(self) -> None:
        """Connect to the node and be admitted, waiting up to ``heartbeat_timeout`` for it.

        Raises:
            CallStateError: already started, or stopped.
            AgentRefused: the node refused this agent; the message says why.
            AgentClosed: no node answered within ``heartbeat_timeout``.
        """
        self.calls.call(Call.START)
        self._tasks_in, self._tasks = anyio.create_memory_object_stream[Task](math.inf)
        group = anyio.create_task_group()
        await group.__aenter__()
        try:
            await group.start(self._serve)
        except BaseException as exc:
            self._close(str(exc))
            await group.__aexit__(None, None, None)
            self._tasks.close()
            raise
        self._group = group

    async def get_task(self, timeout: float | None = None) -> Task | None:
        """Wait for the next task; return None if none came within ``timeout`` seconds.

        Raises:
            CallStateError: a task is open, another get_task waits, or not started.
            AgentClosed: the job is over, the node is gone, or the agent was stopped.
        """
        self.calls.call(Call.GET_TASK)
        task = None
        assert self._tasks is not None
        try:
            with anyio.move_on_after(math.inf if timeout is None else timeout):
                task = await self._tasks.receive()
        except anyio.EndOfStream:
            pass
        finally:
            self.calls.call(Call.NO_TASK if task is None else Call.GOT_TASK)
        if self.calls.state is State.CLOSED:
            raise AgentClosed(f"agent closed: {self.calls.closed_reason}")
        self.task = task
        if task is not None:
            self._send(self._taken(task))
        return task

    async def submit_result(self, data: Any, rc: str = RC.OK) -> bool:
        """Send the open task's result; False if the agent closed meanwhile (result dropped).

        A return code other than ``RC.OK`` aborts the run.

        Raises:
            CallStateError: no task is open.
            TypeError: ``data`` holds something the codec cannot carry (the task stays open).
        """
        if not self.calls.allows(Call.SUBMIT_RESULT) or self.task is None:
            return False
        frame = encode_frame(proto.result_message(self.agent_id, self.node or "", self.task,
                                                  data, rc))
        self.calls.call(Call.SUBMIT_RESULT)
        self.task, self._last_result = None, frame
        self._send(frame)
        return True

    async def log_metric(self, key: str, value: Any, step: int | None = None) -> None:
        """Send a metric to the node (best effort: dropped while disconnected).

        Raises:
            CallStateError: not started.
            TypeError: ``value`` cannot be encoded.
        """
        if self.calls.call(Call.LOG_METRIC):
            self._send(encode_frame(proto.metric(self.agent_id, self.node or "", key, value,
                                                 step)))

    async def stop(self, reason: str = "the agent stopped") -> None:
        """Tell the node this agent stops (and why), and close; idempotent.

        Call it from the task that called ``start``.
        """
        link = self._link
        if self.calls.state is not State.CLOSED and link is not None:
            self._send(encode_frame(proto.goodbye(self.agent_id, self.node or "", reason)))
        self.calls.call(Call.STOP)
        self._close("stop() was called")
        group, self._group = self._group, None
        if group is not None:  # a connected link gets 1 s to say goodbye
            group.cancel_scope.deadline = anyio.current_time() + (1.0 if link else 0.0)
            await group.__aexit__(None, None, None)
        if self._tasks is not None:
            self._tasks.close()

    async def __aenter__(self) -> AsyncAgent:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: object) -> None:
        await self.stop("the agent stopped" if exc is None else
                        f"the trainer raised {type(exc).__name__}: {exc}")

    # -- NVFlare 2.9 Client API style ---------------------------------------
    async def receive(self, timeout: float | None = None) -> Any:
        """Return the next task's data (its name and id: ``self.task``), or None when over.

        Raises:
            CallStateError: as ``get_task``.
        """
        with contextlib.suppress(AgentClosed):
            task = await self.get_task(timeout)
            return None if task is None else task.data
        return None

    async def send(self, data: Any, rc: str = RC.OK) -> bool:
        """Send the result of the task ``receive`` returned; see ``submit_result``."""
        return await self.submit_result(data, rc)

    def is_running(self) -> bool:
        """True until the job is over, the node is gone or the agent stopped."""
        return self.calls.state is not State.CLOSED

    # -- the link ---------------------------------------------------------
    async def _serve(self, *, task_status: TaskStatus[None]) -> None:
        link: Link | None = await self._connect(anyio.current_time())
        task_status.started()
        while link is not None:
            why = "the agent stopped"
            try:
                why = await self._carry(link)
            finally:
                with anyio.CancelScope(shield=True):
                    await link.aclose()
            link = await self._reconnect(link.last_received, why)

    async def _carry(self, link: Link) -> str:
        self._link = link
        if self._last_result is not None:
            link.send_frame(self._last_result)  # the node drops it if it already has it
        if self.task is not None:
            link.send_frame(self._taken(self.task))  # the trainer works on it: no resend
        try:
            return await link.run(self._on_envelope, self._heartbeat, self.heartbeat_interval,
                                  self.heartbeat_timeout)
        finally:
            self._link = None

    async def _reconnect(self, last_heard: float, why: str) -> Link | None:
        if self.calls.state is State.CLOSED:
            return None
        logger.warning("agent %r lost node %r (%s); reconnecting", self.agent_id, self.node, why)
        try:
            return await self._connect(last_heard, once_admitted=True)
        except AgentClosed as exc:
            self._close(f"node {self.node!r} is gone: {why}; {exc}")
            return None

    async def _connect(self, since: float, *, once_admitted: bool = False) -> Link:
        """Connect and be admitted, retrying until ``heartbeat_timeout`` after ``since``.

        With ``once_admitted``, a refused connection ends the retries at once.
        """
        deadline = since + self.heartbeat_timeout
        while True:
            try:
                with anyio.fail_after(max(deadline - anyio.current_time(), 0.1)):
                    return await self._admit(await handshake.dial(self.address,
                                                                  self.ssl_context))
            except _RETRY as exc:
                error = exc
            if once_admitted and handshake.refused(error):
                raise AgentClosed(f"nothing listens at {format_address(self.address)} "
                                  f"any more (its process ended)")
            if anyio.current_time() + self.resend_interval > deadline:
                raise AgentClosed(f"no node admitted agent {self.agent_id!r} at "
                                  f"{format_address(self.address)} within "
                                  f"{self.heartbeat_timeout:g} s ({error!r})")
            await anyio.sleep(self.resend_interval)

    async def _admit(self, link: Link) -> Link:
        self._wire, settings = await handshake.greet(link, self.agent_id, self._seen, self.run)
        self.node, self.run = str(settings["node"]), str(settings["run"])
        self.heartbeat_interval = float(settings["heartbeat_interval"])
        self.heartbeat_timeout = float(settings["heartbeat_timeout"])
        return link

    def _on_envelope(self, envelope: Envelope) -> None:
        message = self._wire.receive(envelope)
        if message in (Message.CLOSE, Message.ABORT):
            self._close(f"node {self.node!r}: {envelope.body}")
        elif message is Message.TASK:
            self._send(encode_frame(proto.received(self.agent_id, envelope.sender, envelope.id)))
            if envelope.id != self._seen:
                self._seen = envelope.id
                assert self._tasks_in is not None
                self._tasks_in.send_nowait(Task(envelope.topic, envelope.id, envelope.body))

    def _heartbeat(self) -> Envelope:
        return proto.heartbeat(self.agent_id, self.node or "")

    def _taken(self, task: Task) -> bytes:
        return encode_frame(proto.taken(self.agent_id, self.node or "", task.id))

    def _send(self, frame: bytes) -> None:
        if self._link is not None:
            with contextlib.suppress(anyio.ClosedResourceError):
                self._link.send_frame(frame)

    def _close(self, reason: str) -> None:
        self.calls.close(reason)
        if self._tasks_in is not None:
            self._tasks_in.close()
        if self._link is not None:
            self._link.finish()

