from __future__ import annotations

import itertools

import pytest

from peerflow.agents import (
    RC,
    AgentClosed,
    AgentProtocolError,
    AgentRefused,
    CallStateError,
    LinkSettings,
    MetaKey,
    Task,
    TaskResult,
)
from peerflow.agents import _agent_protocol as proto
from peerflow.agents import _handshake as handshake
from peerflow.agents import _states as states
from peerflow.agents._states import (
    TABLE,
    AgentCalls,
    Call,
    Conversation,
    Message,
    Role,
    State,
    Wire,
)
from peerflow.transport import HandshakeError, Hello, decode, encode_bytes

PATHS = {  # the calls that lead from NEW to each state
    State.NEW: [],
    State.READY: [Call.START],
    State.WAITING: [Call.START, Call.GET_TASK],
    State.WORKING: [Call.START, Call.GET_TASK, Call.GOT_TASK],
    State.CLOSED: [Call.START, Call.STOP],
}


def calls_in(state: State) -> AgentCalls:
    calls = AgentCalls()
    for call in PATHS[state]:
        calls.call(call)
    assert calls.state is state
    return calls


ILLEGAL = [(s, c) for s, c in itertools.product(State, Call)
           if c not in TABLE[s] and not (s is State.CLOSED and c in states._CLOSED_QUIETLY)]


@pytest.mark.parametrize(("state", "call"), ILLEGAL, ids=lambda x: x.name)
def test_every_illegal_call_raises_and_leaves_the_state_unchanged(state: State,
                                                                  call: Call) -> None:
    calls = calls_in(state)
    expected = AgentClosed if (state, call) == (State.CLOSED, Call.GET_TASK) else CallStateError
    with pytest.raises(expected):
        calls.call(call)
    assert calls.state is state
    with pytest.raises(expected):
        calls.allows(call)


@pytest.mark.parametrize(("state", "call"),
                         [(s, c) for s in State for c in TABLE[s]], ids=lambda x: x.name)
def test_every_legal_call_moves_as_the_table_says(state: State, call: Call) -> None:
    calls = calls_in(state)
    assert calls.call(call) is True
    assert calls.state is (TABLE[state][call] or state)


def test_the_messages_name_the_call_the_state_and_what_is_allowed() -> None:
    calls = calls_in(State.WORKING)
    with pytest.raises(CallStateError, match=r"get_task\(\) called while a task is open "
                                             r"\(call submit_result\(\) first\); allowed here: "
                                             r"submit_result\(\), log_metric\(\), stop\(\)"):
        calls.call(Call.GET_TASK)
    with pytest.raises(CallStateError, match=r"submit_result\(\) called with no open task"):
        calls_in(State.READY).call(Call.SUBMIT_RESULT)
    with pytest.raises(CallStateError, match=r"get_task\(\) called before start\(\)"):
        calls_in(State.NEW).call(Call.GET_TASK)


def test_once_closed_get_task_raises_agent_closed_and_results_are_dropped_quietly() -> None:
    calls = calls_in(State.WORKING)
    calls.close("node 'a': the job is over")
    calls.close("a later reason is ignored")
    assert calls.state is State.CLOSED
    with pytest.raises(AgentClosed, match="the job is over"):
        calls.call(Call.GET_TASK)
    assert calls.call(Call.SUBMIT_RESULT) is False
    assert calls.call(Call.LOG_METRIC) is False
    assert calls.call(Call.STOP) is True and calls.state is State.CLOSED


def test_stop_before_start_closes_and_start_after_stop_is_refused() -> None:
    calls = AgentCalls()
    calls.call(Call.STOP)
    assert calls.closed_reason == "stop() was called"
    with pytest.raises(CallStateError, match=r"start\(\) called after the agent closed"):
        calls.call(Call.START)


def round_trip(envelope: proto.Envelope) -> proto.Envelope:
    return decode(encode_bytes(envelope))


def body(frame: bytes) -> bytes:
    return frame[4:]  # the handshake frame without its length prefix


def test_a_hello_with_the_expected_id_is_welcomed_with_the_nodes_heartbeat_settings() -> None:
    request = Hello.parse(body(handshake.hello("trainer-1", "t-1", None).frame()))
    assert request.settings == {"task": "t-1"}
    assert handshake.check_hello(request, "site-1", "trainer-1", "run-1", busy=False) is None
    answer = handshake.welcome("site-1", "run-1", LinkSettings(0.5, 2.0)).frame()
    assert handshake.read_welcome(body(answer)) == {
        "node": "site-1", "run": "run-1", "heartbeat_interval": 0.5, "heartbeat_timeout": 2.0}


def test_a_hello_with_another_id_or_run_or_while_busy_is_refused_naming_the_agent() -> None:
    request = handshake.hello("intruder", None, None)
    reason = handshake.check_hello(request, "site-1", "trainer-1", "run-1", busy=False)
    assert reason == "node 'site-1' refused agent 'intruder': it expects 'trainer-1'"
    with pytest.raises(AgentRefused, match="refused agent 'intruder'"):
        handshake.read_welcome(body(HandshakeError(reason).frame()))
    assert handshake.check_hello(handshake.hello("trainer-1", None, "run-0"), "site-1",
                                 "trainer-1", "run-1", busy=False) == (
        "node 'site-1' refused agent 'trainer-1': connection for run 'run-0' refused: this "
        "is run 'run-1'")
    assert "agent 'trainer-1' is connected already" in (handshake.check_hello(
        handshake.hello("trainer-1", None, None), "site-1", "trainer-1", "run-1", busy=True)
        or "")
    with pytest.raises(HandshakeError, match="expected a peerflow welcome or refuse"):
        handshake.read_welcome(body(handshake.hello("x", None, None).frame()))


def test_a_task_carries_its_name_id_data_and_meta() -> None:
    task = Task("train", "t-1", {"w": 1.0}, {MetaKey.CURRENT_ROUND: 3})
    message = round_trip(proto.task_message("site-1", "trainer-1", task))
    assert message.id == "t-1" and message.topic == "train"
    assert proto.read_task(message) == task
    message.body = {"data": 1}
    with pytest.raises(AgentProtocolError, match=r"a task must be \{data, meta\}"):
        proto.read_task(message)


def test_a_result_carries_its_task_id_code_data_and_meta() -> None:
    task = Task("train", "t-1", {"w": 1.0})
    result = TaskResult([1, 2], {MetaKey.NUM_STEPS_CURRENT_ROUND: 10}, RC.TASK_ABORTED)
    message = round_trip(proto.result_message("trainer-1", "site-1", task, result))
    assert message.reply_to == "t-1" and message.topic == "train"
    assert proto.read_result(message) == TaskResult([1, 2], {"NUM_STEPS_CURRENT_ROUND": 10},
                                                    "TASK_ABORTED")
    for bad in ({"data": 1, "meta": {}}, {"rc": "OK", "data": 1}, {"rc": "OK", "data": 1,
                                                                   "meta": []}):
        message.body = bad
        with pytest.raises(AgentProtocolError, match=r"a result must be \{rc, data, meta\}"):
            proto.read_result(message)


def test_a_task_result_is_checked_and_prints_like_nvflares() -> None:
    assert TaskResult(0, None).meta == {} and TaskResult(0).data == 0
    with pytest.raises(TypeError, match="meta must be a dict, got list"):
        TaskResult(meta=[])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="return_code must be a str"):
        TaskResult(return_code=1)  # type: ignore[arg-type]
    assert str(Task("train", "t-1", [0.0] * 1000)) == "'train t-1'"


def test_the_return_codes_and_meta_keys_are_nvflares() -> None:
    assert {"OK", "EXECUTION_EXCEPTION", "TASK_ABORTED", "TASK_UNKNOWN", "EARLY_TERMINATION",
            "SERVICE_UNAVAILABLE"} <= {rc.value for rc in RC} and len(RC) == 25
    assert all(rc.name == rc.value for rc in RC)
    assert (MetaKey.NUM_STEPS_CURRENT_ROUND, MetaKey.CURRENT_ROUND, MetaKey.TOTAL_ROUND) == (
        "NUM_STEPS_CURRENT_ROUND", "current_round", "total_round")


def test_the_node_end_follows_the_agents_conversation_from_hello_to_close() -> None:
    wire = Conversation(Role.NODE)
    task = Task("run", "t-1", None)
    wire.handshake(Message.HELLO)
    messages = [proto.heartbeat("trainer-1", "site-1"),
                proto.received("trainer-1", "site-1", "t-1"),
                proto.taken("trainer-1", "site-1", "t-1"),
                proto.result_message("trainer-1", "site-1", task, TaskResult(1)),
                proto.goodbye("trainer-1", "site-1", "done")]
    seen = [wire.receive(round_trip(message)) for message in messages]
    assert seen == [Message.HEARTBEAT, Message.RECEIVED, Message.TAKEN,
                    Message.RESULT, Message.CLOSE]
    assert wire.state is Wire.CLOSED


@pytest.mark.parametrize(("role", "first"), [
    (Role.NODE, proto.heartbeat("trainer-1", "site-1")),  # no hello first
    (Role.AGENT, proto.task_message("site-1", "trainer-1", Task("run", "t-1", None))),
])
def test_a_message_out_of_turn_is_a_protocol_error_and_the_link_state_becomes_error(
        role: Role, first: proto.Envelope) -> None:
    wire = Conversation(role)
    with pytest.raises(AgentProtocolError, match="before the handshake ended"):
        wire.receive(first)
    assert wire.state is Wire.ERROR
    with pytest.raises(AgentProtocolError):
        wire.receive(first)


def test_each_end_refuses_what_only_the_other_end_may_send() -> None:
    node, agent = Conversation(Role.NODE), Conversation(Role.AGENT)
    node.handshake(Message.HELLO)
    agent.handshake(Message.WELCOME)
    with pytest.raises(AgentProtocolError, match="agent sent a welcome before the handshake ended"):
        Conversation(Role.NODE).handshake(Message.WELCOME)
    with pytest.raises(AgentProtocolError, match="agent sent ask 'run' on an open link"):
        node.receive(proto.task_message("site-1", "trainer-1", Task("run", "t-1", None)))
    with pytest.raises(AgentProtocolError, match="node sent tell 'metric'"):
        agent.receive(proto.metric("site-1", "trainer-1", "loss", 1.0, None))




def test_only_the_node_says_it_has_a_result() -> None:
    accepted = round_trip(proto.accepted("site-1", "trainer-1", "t-1"))
    assert states.classify(accepted) is Message.ACCEPTED and accepted.reply_to == "t-1"
    table = states.EVENT_TRIGGERED_TRANSITIONS
    assert all(Message.ACCEPTED in table[Role.AGENT][wire] for wire in (Wire.OPEN, Wire.CLOSED))
    assert not any(Message.ACCEPTED in row for row in table[Role.NODE].values())
