"""The agent protocol's state machines, both roles in one table (h11's shape), no I/O.

``EVENT_TRIGGERED_TRANSITIONS[role][state][event]`` is the state after ``event``
(None: unchanged). The agent's role has two machines: the trainer's calls
(``Role.TRAINER``: ``start``, ``get_task``, ``submit_result``... in order) and what
the node may send it on a link (``Role.AGENT``); the node's role is what the agent
may send it (``Role.NODE``). An event the table has no entry for *is* the error:
``CallStateError`` for a trainer's call (local: the state stays, the trainer may
carry on), ``AgentProtocolError`` for a message (remote: the link's state becomes
``Wire.ERROR`` and the link ends). Each link runs a fresh ``Conversation``.
"""

from __future__ import annotations

import enum
from typing import Any, Final

from peerflow.transport import Envelope

from ._agent_protocol import (
    ACCEPTED,
    CLOSE,
    METRIC,
    RECEIVED,
    TAKEN,
    AgentClosed,
    AgentError,
    AgentProtocolError,
    CallStateError,
)


class Role(enum.Enum):
    """Whose machine: the trainer's calls, or one end of the wire (named by who receives)."""

    TRAINER = "trainer"
    NODE = "node"
    AGENT = "agent"


class State(enum.Enum):
    """Where a trainer is in its calls; the value completes "<call> called ..."."""

    NEW = "before start()"
    READY = "with no open task (call get_task() first)"
    WAITING = "while another get_task() is waiting"
    WORKING = "while a task is open (call submit_result() first)"
    CLOSED = "after the agent closed"


class Call(enum.Enum):
    """What moves the state: a trainer's calls, and two outcomes of a waiting get_task."""

    START = "start"
    GET_TASK = "get_task"
    GOT_TASK = "a task arrived for get_task"
    NO_TASK = "get_task timed out"
    SUBMIT_RESULT = "submit_result"
    LOG_METRIC = "log_metric"
    STOP = "stop"


class Wire(enum.Enum):
    """Where one end of a link is; the value completes "<peer> sent <message> ..."."""

    HANDSHAKE = "before the handshake ended"
    OPEN = "on an open link"
    CLOSED = "after it said goodbye"
    ERROR = "after a protocol error"


class Message(enum.Enum):
    """What arrives on a link: a handshake frame (see ``_handshake``), or an envelope by
    kind and topic (see ``_agent_protocol``)."""

    HELLO = "hello"
    WELCOME = "welcome"
    REFUSAL = "refusal"
    TASK = "task"
    RECEIVED = "received"
    TAKEN = "taken"
    RESULT = "result"
    ACCEPTED = "accepted"
    METRIC = "metric"
    CLOSE = "close"
    ABORT = "abort"
    HEARTBEAT = "heartbeat"


_ANY_OPEN = {Call.LOG_METRIC: None, Call.STOP: State.CLOSED}  # None: the state stays
# A side that said goodbye may still have messages in flight: they are taken as before.
_FROM_AGENT: Final = dict.fromkeys((Message.HEARTBEAT, Message.METRIC, Message.RECEIVED,
                                    Message.TAKEN, Message.RESULT), None) | {
    Message.CLOSE: Wire.CLOSED}
_FROM_NODE: Final = dict.fromkeys((Message.HEARTBEAT, Message.TASK, Message.ACCEPTED), None) | {
    Message.CLOSE: Wire.CLOSED, Message.ABORT: Wire.CLOSED}
EVENT_TRIGGERED_TRANSITIONS: Final[dict[Role, dict[Any, dict[Any, Any]]]] = {
    Role.TRAINER: {
        State.NEW: {Call.START: State.READY, Call.STOP: State.CLOSED},
        State.READY: {Call.GET_TASK: State.WAITING, **_ANY_OPEN},
        State.WAITING: {Call.GOT_TASK: State.WORKING, Call.NO_TASK: State.READY, **_ANY_OPEN},
        State.WORKING: {Call.SUBMIT_RESULT: State.READY, **_ANY_OPEN},
        State.CLOSED: {Call.STOP: None},
    },
    Role.NODE: {
        Wire.HANDSHAKE: {Message.HELLO: Wire.OPEN},
        Wire.OPEN: _FROM_AGENT,
        Wire.CLOSED: _FROM_AGENT,
        Wire.ERROR: {},
    },
    Role.AGENT: {
        Wire.HANDSHAKE: {Message.WELCOME: Wire.OPEN, Message.REFUSAL: Wire.CLOSED},
        Wire.OPEN: _FROM_NODE,
        Wire.CLOSED: _FROM_NODE,
        Wire.ERROR: {},
    },
}
"""``[role][state][event]``: the state after ``event`` (None: unchanged); no entry: refused."""

TABLE: Final[dict[State, dict[Call, State | None]]] = EVENT_TRIGGERED_TRANSITIONS[Role.TRAINER]
"""The trainer's calls: ``TABLE[state][call]``."""

_INTERNAL: Final = frozenset({Call.GOT_TASK, Call.NO_TASK})
"""Outcomes of a waiting get_task, not calls a trainer makes."""
_CLOSED_QUIETLY: Final = _INTERNAL | {Call.SUBMIT_RESULT, Call.LOG_METRIC}
"""Calls that do nothing once closed: the next get_task raises ``AgentClosed``."""


class AgentCalls:
    """The agent-side call state: one trainer's calls, checked against ``TABLE``.

    Attributes:
        state: the current state.
        closed_reason: why the agent closed, once it has.
    """

    def __init__(self) -> None:
        self.state = State.NEW
        self.closed_reason: str | None = None

    def allows(self, call: Call) -> bool:
        """Return True if ``call`` changes something now, False if closed and it does nothing.

        Raises:
            CallStateError: the table has no entry for ``call`` in this state.
            AgentClosed: ``get_task`` after the agent closed.
        """
        if self.state is State.CLOSED and call in _CLOSED_QUIETLY:
            return False
        if call not in TABLE[self.state]:
            raise self._refusal(call)
        return True

    def call(self, call: Call) -> bool:
        """Move along the table for ``call``; return False if closed and it does nothing.

        Raises:
            CallStateError: the table has no entry for ``call``; the state is unchanged.
            AgentClosed: ``get_task`` after the agent closed.
        """
        if not self.allows(call):
            return False
        after = TABLE[self.state][call]
        if after is State.CLOSED:
            self.close(f"{call.value}() was called")
        elif after is not None:
            self.state = after
        return True

    def close(self, reason: str) -> None:
        """Close for ``reason`` (the first reason stays); always allowed."""
        if self.state is not State.CLOSED:
            self.state, self.closed_reason = State.CLOSED, reason

    def _refusal(self, call: Call) -> AgentError:
        if self.state is State.CLOSED and call is Call.GET_TASK:
            return AgentClosed(f"agent closed: {self.closed_reason}")
        allowed = ", ".join(f"{c.value}()" for c in TABLE[self.state] if c not in _INTERNAL)
        return CallStateError(f"{call.value}() called {self.state.value}; "
                              f"allowed here: {allowed or 'nothing'}")


_BY_KIND_AND_TOPIC: Final = {  # the handshake's messages are frames of their own
    ("tell", RECEIVED): Message.RECEIVED,
    ("tell", TAKEN): Message.TAKEN, ("tell", METRIC): Message.METRIC,
    ("tell", ACCEPTED): Message.ACCEPTED,
    ("tell", CLOSE): Message.CLOSE, ("abort", CLOSE): Message.ABORT}
_BY_KIND: Final = {"heartbeat": Message.HEARTBEAT, "ask": Message.TASK, "reply": Message.RESULT}


def classify(envelope: Envelope) -> Message | None:
    """Return which message ``envelope`` is, or None if the protocol has no such message."""
    return (_BY_KIND_AND_TOPIC.get((envelope.kind, envelope.topic))
            or _BY_KIND.get(envelope.kind))


class Conversation:
    """One end of one link, moved along ``EVENT_TRIGGERED_TRANSITIONS[role]``.

    Attributes:
        role: ``Role.NODE`` or ``Role.AGENT``: the end that receives.
        state: the current ``Wire`` state.
    """

    def __init__(self, role: Role) -> None:
        self.role = role
        self.state = Wire.HANDSHAKE

    def receive(self, envelope: Envelope) -> Message:
        """Return the message ``envelope`` is, and move along the table.

        Raises:
            AgentProtocolError: the table has no entry for it here; the state is ERROR.
        """
        message = classify(envelope)
        self._move(message, f"{envelope.kind} {envelope.topic!r}")
        assert message is not None
        return message

    def handshake(self, message: Message) -> None:
        """Move along the table for a handshake frame (``HELLO``, ``WELCOME``, ``REFUSAL``).

        Raises:
            AgentProtocolError: the table has no entry for it here; the state is ERROR.
        """
        self._move(message, f"a {message.value}")

    def _move(self, message: Message | None, what: str) -> None:
        try:
            after = EVENT_TRIGGERED_TRANSITIONS[self.role][self.state][message]
        except KeyError:
            peer = "agent" if self.role is Role.NODE else "node"
            error = AgentProtocolError(f"{peer} sent {what} {self.state.value}")
            self.state = Wire.ERROR
            raise error from None
        if after is not None:
            self.state = after
