"""The agent protocol, sans-IO: its errors and the messages of the agent link.

Like h11, the protocol is data with no I/O in it: the messages here, and the
state table of both roles in ``_states``. The links that carry the messages live in
``_agent_link`` (framing), ``_agent`` (agent side) and ``_agent_server`` (node side).

Messages on the link, all envelopes (sender: the node id or the agent id)::

    agent -> node   hello (node: agent id, run, settings {task})  first frame of each
    node  -> agent  welcome (node, run, settings {heartbeat_interval, heartbeat_timeout})
                    | refuse "<why>"   (the transport's handshake frames, see ``_handshake``)
    node  -> agent  ask <task name> {data, meta}, id = task id
    agent -> node   tell "received", reply_to = task id  (the task reached the agent)
    agent -> node   tell "taken", reply_to = task id     (get_task handed it to the trainer)
    agent -> node   reply {rc, data, meta}, reply_to = task id
    node  -> agent  tell "accepted", reply_to = task id  (the node has the result)
    agent -> node   tell "metric" {key, value, step}
    either way      heartbeat
    node  -> agent  tell "close" <reason> (job over) | abort <reason> (run aborted)
    agent -> node   tell "close" <reason>               (the agent stopped)
"""

from __future__ import annotations

from typing import Any, Final

from peerflow.actors import ActorError
from peerflow.transport import Envelope, new_message_id

from ._flare_defs import Task, TaskResult

RECEIVED: Final = "received"
TAKEN: Final = "taken"
ACCEPTED: Final = "accepted"
METRIC: Final = "metric"
CLOSE: Final = "close"


class AgentError(ActorError):
    """Base class of the errors of agents and their links."""


class CallStateError(AgentError):
    """A trainer called the agent out of order (``get_task`` twice, ``submit_result`` first...)."""


class AgentClosed(AgentError):
    """The agent is closed: the job ended, the node is gone, or ``stop()`` was called."""


class AgentRefused(AgentClosed):
    """The node refused this agent (wrong ``agent_id``, or another agent holds the link)."""


class AgentProtocolError(AgentError):
    """The peer sent a message the agent protocol does not allow."""


class AgentFailed(AgentError):
    """The agent returned a result whose return code is not ``RC.OK``."""


class AgentGone(AgentError):
    """The agent did not connect, take a task, answer or send heartbeats in time."""


class AgentResultError(AgentError):
    """The agent's result does not match what its task asks for (names, shapes, dtypes...)."""


# -- the messages -----------------------------------------------------------
def _envelope(kind: str, sender: str, recipient: str, topic: str, body: Any = None, *,
              reply_to: str | None = None, message_id: str | None = None) -> Envelope:
    return Envelope(kind, sender, recipient, topic, body,  # type: ignore[arg-type]
                    id=message_id or new_message_id(), reply_to=reply_to)


def task_message(node: str, agent_id: str, task: Task) -> Envelope:
    """A task for the agent; the envelope's id is the task id."""
    return _envelope("ask", node, agent_id, task.task_name,
                     {"data": task.data, "meta": task.meta}, message_id=task.task_id)


def read_task(envelope: Envelope) -> Task:
    """Return the task a task message carries.

    Raises:
        AgentProtocolError: the body is not ``{data, meta}`` with a dict ``meta``.
    """
    body = envelope.body
    if not isinstance(body, dict) or body.keys() != {"data", "meta"} or not isinstance(
            body["meta"], dict):
        raise AgentProtocolError(f"a task must be {{data, meta}}, got {body!r:.100}")
    return Task(envelope.topic, envelope.id, body["data"], body["meta"])


def received(agent_id: str, node: str, task_id: str) -> Envelope:
    """The agent's acknowledgement that a task reached it."""
    return _envelope("tell", agent_id, node, RECEIVED, reply_to=task_id)


def taken(agent_id: str, node: str, task_id: str) -> Envelope:
    """The agent's word that ``get_task`` handed the task to the trainer."""
    return _envelope("tell", agent_id, node, TAKEN, reply_to=task_id)


def result_message(agent_id: str, node: str, task: Task, result: TaskResult) -> Envelope:
    """The agent's result of ``task``."""
    body = {"rc": str(result.return_code), "data": result.data, "meta": result.meta}
    return _envelope("reply", agent_id, node, task.task_name, body, reply_to=task.task_id)


def read_result(envelope: Envelope) -> TaskResult:
    """Return the result a result message carries.

    Raises:
        AgentProtocolError: the body is not ``{rc, data, meta}`` with a str ``rc`` and
            a dict ``meta``.
    """
    body = envelope.body
    if (not isinstance(body, dict) or body.keys() != {"rc", "data", "meta"}
            or not isinstance(body["rc"], str) or not isinstance(body["meta"], dict)):
        raise AgentProtocolError(f"a result must be {{rc, data, meta}}, got {body!r:.100}")
    return TaskResult(body["data"], body["meta"], body["rc"])


def accepted(node: str, agent_id: str, task_id: str | None) -> Envelope:
    """The node's word that it has the result of task ``task_id`` (``submit_result``'s True)."""
    return _envelope("tell", node, agent_id, ACCEPTED, reply_to=task_id)


def metric(agent_id: str, node: str, key: str, value: Any, step: int | None) -> Envelope:
    """A metric the trainer logged."""
    return _envelope("tell", agent_id, node, METRIC, {"key": key, "value": value, "step": step})


def heartbeat(sender: str, recipient: str) -> Envelope:
    """A heartbeat: "still here"."""
    return _envelope("heartbeat", sender, recipient, "heartbeat")


def goodbye(sender: str, recipient: str, reason: str, *, aborted: bool = False) -> Envelope:
    """The last message of a side that closes: the job is over, aborted, or the agent stops."""
    return _envelope("abort" if aborted else "tell", sender, recipient, CLOSE, reason)
