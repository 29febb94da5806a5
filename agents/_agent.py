"""The agent side: ``AsyncAgent``, and ``Agent``, its blocking facade for synchronous trainers.

A trainer connects to its node's agent address, presents its ``agent_id``, then loops
``get_task`` / compute / ``submit_result`` until ``get_task`` raises ``AgentClosed``,
as NVFlare's FlareAgent does (its arguments: ``_flare_options``; connecting:
``_flare_connect``). The call order is checked by the state table (``_states``).
Heartbeats run in the link's own task, so a long computation never makes the agent
look dead (``Agent`` runs the event loop in a ``BlockingPortal`` thread). Each side
judges the other by its own ``heartbeat_timeout``. A lost connection is retried; a
task resent is not handed out twice, and a result the node has not confirmed is sent
again. A node that refuses the connection after it admitted the agent is gone at once.
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from peerflow.transport import Envelope

from . import _agent_protocol as proto
from ._agent_link import Link, encode_frame
from ._agent_protocol import AgentClosed
from ._flare_connect import connect
from ._flare_defs import RC, Task, TaskResult
from ._flare_options import agent_options
from ._states import AgentCalls, Call, Conversation, Message, Role, State

logger = logging.getLogger("peerflow.agents")


class AsyncAgent:
    """An external program's link to its node: NVFlare's FlareAgent, async.

    Use ``async with AsyncAgent() as agent:`` or ``start()``/``stop()`` from one task.
    Heavy synchronous work belongs in a thread (or use ``Agent``), not in the loop.
    All arguments but the first two are keywords.

    Args:
        address: the node's agent address ``"host:port"``; default
            ``$PEERFLOW_AGENT_ADDRESS``, then ``root_url``.
        agent_id: this agent's id; default ``$PEERFLOW_AGENT_ID``.
        root_url: NVFlare's server URL; used (scheme dropped) only if neither
            ``address`` nor the environment gives the address, as peerflow has no relay.
        site_name: the node this agent is for (alias ``flare_site_name``; default
            ``$PEERFLOW_NODE``); another node that answers is refused.
        secure_mode: mutual TLS with the site's startup kit in ``workspace_dir``
            (``trainer_tls_context``); or pass an ``ssl_context``. Neither: the kit in
            ``$PEERFLOW_AGENT_WORKSPACE`` if set, else plain TCP.
        heartbeat_interval: seconds between heartbeats (the node's, if shorter).
        heartbeat_timeout: how long ``start`` waits for the node, and how long the node
            may be silent (default ``$PEERFLOW_AGENT_HEARTBEAT_TIMEOUT``, else 60 s).
        resend_interval: seconds between connection attempts.
        max_resends: how many times a failed connection is tried again (None: until
            ``heartbeat_timeout``).
        submit_result_timeout: how long ``submit_result`` waits for the node's word.
        read_interval, pipe, metric_pipe, task_channel_name, metric_channel_name,
            close_pipe: FlareAgent's; accepted, no effect (one link carries all; logged).

    Raises:
        ValueError: no address or agent id, given or in the environment, or a bad time.
        AgentKitError: secure mode, and the workspace holds no valid kit of the site.
    """

    def __init__(self, address: str | tuple[str, int] | None = None,
                 agent_id: str | None = None, **options: Any) -> None:
        self.options = agent_options(address, agent_id, **options)
        self.address, self.agent_id = self.options.address, self.options.agent_id
        self.site_name = self.options.site_name
        self.heartbeat_interval = self.options.heartbeat_interval  # at most the node's
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
        self._last_result: bytes | None = None  # sent again after a reconnect until accepted
        self._unaccepted: str | None = None  # id of the task of that result
        self._accepted: anyio.Event | None = None  # set when it is accepted or the agent closes

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

    async def submit_result(self, result: TaskResult) -> bool:
        """Send the open task's result; return whether the node confirmed it has it.

        Waits up to ``submit_result_timeout`` for the node's word. False: the agent
        closed (the result is dropped), or no word came in time (the result is sent
        again if the agent reconnects). Either way the task is closed, as in NVFlare.
        A return code other than ``RC.OK`` aborts the run.

        Raises:
            TypeError: ``result`` is not a ``TaskResult``, or its data or meta hold
                something the codec cannot carry (the task stays open).
            CallStateError: no task is open.
        """
        if not isinstance(result, TaskResult):
            raise TypeError(f"submit_result takes a TaskResult(data=..., meta=..., "
                            f"return_code=...), got {type(result).__name__}")
        task = self.task
        if not self.calls.allows(Call.SUBMIT_RESULT) or task is None:
            return False
        frame = encode_frame(proto.result_message(self.agent_id, self.node or "", task, result))
        self.calls.call(Call.SUBMIT_RESULT)
        self.task, self._last_result, self._unaccepted = None, frame, task.task_id
        accepted = self._accepted = anyio.Event()
        self._send(frame)
        with anyio.move_on_after(self.options.submit_result_timeout):
            await accepted.wait()
        return self._unaccepted != task.task_id

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

    async def send(self, data: Any, meta: dict[str, Any] | None = None,
                   return_code: str = RC.OK) -> bool:
        """Send the result of the task ``receive`` returned; see ``submit_result``."""
        return await self.submit_result(TaskResult(data, meta, return_code))

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
                                  self.options.heartbeat_timeout)
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
        admission = await connect(self.options, self._seen, self.run, since,
                                  once_admitted=once_admitted)
        self._wire, self.node, self.run = admission.wire, admission.node, admission.run
        self.heartbeat_interval = admission.heartbeat_interval
        return admission.link

    def _on_envelope(self, envelope: Envelope) -> None:
        message = self._wire.receive(envelope)
        if message in (Message.CLOSE, Message.ABORT):
            self._close(f"node {self.node!r}: {envelope.body}")
        elif message is Message.ACCEPTED and envelope.reply_to == self._unaccepted:
            self._unaccepted = self._last_result = None
            assert self._accepted is not None
            self._accepted.set()
        elif message is Message.TASK:
            task = proto.read_task(envelope)
            self._send(encode_frame(proto.received(self.agent_id, envelope.sender, task.task_id)))
            if task.task_id != self._seen:
                self._seen = task.task_id
                assert self._tasks_in is not None
                self._tasks_in.send_nowait(task)

    def _heartbeat(self) -> Envelope:
        return proto.heartbeat(self.agent_id, self.node or "")

    def _taken(self, task: Task) -> bytes:
        return encode_frame(proto.taken(self.agent_id, self.node or "", task.task_id))

    def _send(self, frame: bytes) -> None:
        if self._link is not None:  # a link that is ending drops it
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                self._link.send_frame(frame)

    def _close(self, reason: str) -> None:
        self.calls.close(reason)
        if self._accepted is not None:
            self._accepted.set()
        if self._tasks_in is not None:
            self._tasks_in.close()
        if self._link is not None:
            self._link.finish()

