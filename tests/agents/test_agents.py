from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

import peerflow
from peerflow.actors import Config, Controller, RunResult, Runtime
from peerflow.agents import (
    RC,
    Agent,
    AgentClosed,
    AgentRefused,
    AsyncAgent,
    CallStateError,
    TaskExchanger,
    TaskResult,
    agent_status,
)
from peerflow.algorithms import metropolis_hastings, path
from peerflow.transport import MemoryTransport

HB = {"heartbeat_interval": 0.1, "heartbeat_timeout": 1.0}
MARGIN = 2.0
Trainer = Callable[[AsyncAgent, TaskExchanger], Awaitable[None]]


def exchangers(nodes: int = 2, **options: Any) -> tuple[Config, dict[str, TaskExchanger]]:
    network = metropolis_hastings(path(nodes))
    return Config(network, {"iterations": 1}), {
        node: TaskExchanger(f"{node}-trainer", **{**HB, **options}) for node in network.node_ids}


async def echo(agent: AsyncAgent, node: TaskExchanger) -> None:
    while True:
        try:
            task = await agent.get_task()
        except AgentClosed:
            return
        assert task is not None
        await agent.log_metric("seen", task.task_name, step=1)
        await agent.submit_result(TaskResult({"name": task.task_name, "data": task.data}))


async def serve_agent(node: TaskExchanger, trainer: Trainer = echo, agent_id: str | None = None,
                      address: Any = None) -> None:
    address = address or await node.agent.wait_listening()
    async with AsyncAgent(address, agent_id or node.agent.agent_id,
                          heartbeat_timeout=HB["heartbeat_timeout"]) as agent:
        await trainer(agent, node)


async def run_with(config: Config, nodes: dict[str, TaskExchanger],
                   trainer: Trainer | None = echo) -> RunResult:
    async with anyio.create_task_group() as group:
        if trainer is not None:
            for node in nodes.values():
                group.start_soon(serve_agent, node, trainer)
        result = await peerflow.run(config, nodes)
    return result


@asynccontextmanager
async def controller_for(nodes: dict[str, TaskExchanger]) -> AsyncIterator[Controller]:
    async with Runtime(MemoryTransport(strict=True)) as runtime:
        for name, node in nodes.items():
            await runtime.spawn(node, name)
        yield await runtime.spawn(Controller(nodes))


async def test_the_run_task_goes_to_each_nodes_agent_and_its_result_comes_back() -> None:
    config, nodes = exchangers(3)
    with anyio.fail_after(10):
        result = await run_with(config, nodes)
    assert result.ok, result.reason
    assert result.results == dict.fromkeys(nodes, {"name": "run", "data": {"iterations": 1}})
    assert all(n.agent.metrics == [{"key": "seen", "value": "run", "step": 1}]
               for n in nodes.values())


async def test_many_controller_tasks_round_trip_and_status_rows_name_the_agents() -> None:
    _, nodes = exchangers(2)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group, controller_for(nodes) as controller:
            for node in nodes.values():
                group.start_soon(serve_agent, node)
            for i in range(20):
                answers = await controller.broadcast_and_wait("train", {"round": i}, timeout=5)
                assert answers["site-1"] == {"name": "train", "data": {"round": i}}
            rows = agent_status(nodes.values())
            assert [(r["node"], r["agent_id"], r["connected"]) for r in rows] == [
                ("site-1", "site-1-trainer", True), ("site-2", "site-2-trainer", True)]
            assert all(r["connected_since"] <= r["last_heartbeat"] for r in rows)


async def test_an_agent_started_before_its_node_waits_for_it() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config, nodes = exchangers(1, listen=f"127.0.0.1:{port}")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(serve_agent, nodes["site-1"], echo, None, f"127.0.0.1:{port}")
            await anyio.sleep(0.5)
            result = await peerflow.run(config, nodes)
    assert result.ok, result.reason


async def test_calls_out_of_order_raise_call_state_error_and_the_agent_carries_on() -> None:
    async def careless(agent: AsyncAgent, node: TaskExchanger) -> None:
        with pytest.raises(CallStateError, match=r"submit_result\(\) called with no open task"):
            await agent.submit_result(TaskResult("too early"))
        task = await agent.get_task()
        assert task is not None and agent.task == task
        with pytest.raises(CallStateError, match=r"get_task\(\) called while a task is open"):
            await agent.get_task()
        with pytest.raises(CallStateError, match=r"start\(\) called while a task is open"):
            await agent.start()
        await echo_one(agent, task)
        await echo(agent, node)

    config, nodes = exchangers(2)
    with anyio.fail_after(10):
        result = await run_with(config, nodes, careless)
    assert result.ok, result.reason


async def echo_one(agent: AsyncAgent, task: Any) -> None:
    result = TaskResult({"name": task.task_name, "data": task.data})
    assert await agent.submit_result(result) is True


async def test_a_result_with_a_non_ok_code_aborts_the_run_naming_node_agent_and_code() -> None:
    closed: list[str] = []

    async def failing(agent: AsyncAgent, node: TaskExchanger) -> None:
        await agent.get_task()
        rc = RC.EXECUTION_EXCEPTION if node.name == "site-2" else RC.OK
        await agent.submit_result(TaskResult("out of memory", return_code=rc))
        with pytest.raises(AgentClosed) as info:
            await agent.get_task()
        closed.append(str(info.value))

    config, nodes = exchangers(2)
    with anyio.fail_after(10):
        result = await run_with(config, nodes, failing)
    assert result.status == "aborted" and result.node == "site-2"
    assert result.reason == ("agent 'site-2-trainer' of node 'site-2' returned "
                             "EXECUTION_EXCEPTION for task 'run': out of memory")
    assert any("run aborted: agent 'site-2-trainer'" in reason for reason in closed)


async def test_a_trainer_that_raises_stops_its_agent_and_the_run_aborts_naming_both() -> None:
    async def crashing(agent: AsyncAgent, node: TaskExchanger) -> None:
        await agent.get_task()
        raise RuntimeError("out of memory")

    async def expect_crash() -> None:
        with pytest.raises(RuntimeError):
            await serve_agent(nodes["site-1"], crashing)

    config, nodes = exchangers(1)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(expect_crash)
            result = await peerflow.run(config, nodes)
    assert result.status == "aborted"
    assert result.reason == ("agent 'site-1-trainer' of node 'site-1' stopped during task 'run' "
                             "(the trainer raised RuntimeError: out of memory)")


async def test_an_agent_with_the_wrong_id_is_refused_on_both_sides() -> None:
    config, nodes = exchangers(1)
    node = nodes["site-1"]
    results: list[RunResult] = []
    refusal = "node 'site-1' refused agent 'intruder': it expects 'site-1-trainer'"

    async def run() -> None:
        results.append(await peerflow.run(config, nodes))

    start = anyio.current_time()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(run)
            address = await node.agent.wait_listening()
            with pytest.raises(AgentRefused, match=refusal):
                await AsyncAgent(address, "intruder", heartbeat_timeout=1).start()
    assert node.agent.refused == [refusal]
    assert results[0].status == "aborted" and results[0].reason is not None
    assert results[0].reason.endswith(f"refused: {refusal}")
    assert anyio.current_time() - start < HB["heartbeat_timeout"] + MARGIN


async def test_a_node_without_its_agent_aborts_within_heartbeat_timeout_naming_it() -> None:
    config, nodes = exchangers(2)
    start = anyio.current_time()
    with anyio.fail_after(10):
        result = await run_with(config, nodes, trainer=None)
    assert result.status == "aborted"
    assert result.reason is not None
    node = result.node
    assert f"agent '{node}-trainer' of node '{node}' is not connected" in result.reason
    assert "it never connected" in result.reason
    assert anyio.current_time() - start < HB["heartbeat_timeout"] + MARGIN


async def test_an_agent_that_loses_its_connection_reconnects_and_finishes_the_task() -> None:
    async def flaky(agent: AsyncAgent, node: TaskExchanger) -> None:
        task = await agent.get_task()
        assert agent._link is not None
        await agent._link._stream.aclose()  # the network drops the connection
        await anyio.sleep(0.3)
        await echo_one(agent, task)
        await echo(agent, node)

    config, nodes = exchangers(2)
    with anyio.fail_after(10):
        result = await run_with(config, nodes, flaky)
    assert result.ok, result.reason
    assert result.results["site-1"] == {"name": "run", "data": {"iterations": 1}}


async def test_the_receive_send_style_speaks_the_same_protocol() -> None:
    async def client_api(agent: AsyncAgent, node: TaskExchanger) -> None:
        while agent.is_running():
            data = await agent.receive()
            if data is not None:
                assert agent.task is not None and agent.task.task_name == "run"
                await agent.send({"name": "run", "data": data})

    config, nodes = exchangers(2)
    with anyio.fail_after(10):
        result = await run_with(config, nodes, client_api)
    assert result.ok, result.reason


async def test_the_blocking_agent_serves_a_plain_synchronous_loop() -> None:
    def trainer(address: Any, agent_id: str) -> list[str]:
        names = []
        with Agent(address, agent_id, heartbeat_timeout=1) as agent:
            while True:
                try:
                    task = agent.get_task()
                except AgentClosed:
                    break
                assert task is not None
                names.append(task.task_name)
                agent.submit_result(TaskResult({"name": task.task_name, "data": task.data}))
        with pytest.raises(AgentClosed):
            agent.get_task()
        return names

    config, nodes = exchangers(1)
    node = nodes["site-1"]
    names: list[str] = []

    async def in_thread() -> None:
        address = await node.agent.wait_listening()
        names.extend(await anyio.to_thread.run_sync(trainer, address, node.agent.agent_id))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(in_thread)
            result = await peerflow.run(config, nodes)
    assert result.ok, result.reason
    assert names == ["run"]


def test_the_blocking_agent_refuses_calls_before_start_and_after_stop() -> None:
    agent = Agent("127.0.0.1:9", "trainer")
    with pytest.raises(CallStateError, match=r"get_task\(\) called before start\(\)"):
        agent.get_task()
    agent.stop()
    with pytest.raises(AgentClosed):
        agent.get_task()
    assert agent.submit_result(TaskResult(1)) is False
    assert agent.receive() is None and not agent.is_running()


def test_an_agent_needs_an_address_and_an_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PEERFLOW_AGENT_ADDRESS", raising=False)
    with pytest.raises(ValueError, match="PEERFLOW_AGENT_ADDRESS"):
        AsyncAgent()
    monkeypatch.setenv("PEERFLOW_AGENT_ADDRESS", "127.0.0.1:5000")
    monkeypatch.setenv("PEERFLOW_AGENT_ID", "t-1")
    agent = AsyncAgent()
    assert (agent.address, agent.agent_id) == (("127.0.0.1", 5000), "t-1")


async def idle(agent: AsyncAgent, node: TaskExchanger) -> None:
    """A trainer that connects and heartbeats but never calls get_task."""
    while agent.is_running():
        await anyio.sleep(0.05)


@pytest.mark.parametrize("nodes", [1, 3])
async def test_an_agent_that_never_calls_get_task_aborts_the_run_naming_it(nodes: int) -> None:
    async def idle_on_last(agent: AsyncAgent, node: TaskExchanger) -> None:
        await (idle if node.name == f"site-{nodes}" else echo)(agent, node)

    config, exchangers_ = exchangers(nodes)
    start = anyio.current_time()
    with anyio.fail_after(10):
        result = await run_with(config, exchangers_, idle_on_last)
    assert result.status == "aborted" and result.node == f"site-{nodes}"
    assert result.reason is not None and result.reason.startswith(
        f"agent 'site-{nodes}-trainer' of node 'site-{nodes}' did not take task 'run' within "
        "1 s (it received the task, but get_task() was not called; last heard 0.")
    assert anyio.current_time() - start < HB["heartbeat_timeout"] + MARGIN


async def test_the_time_to_take_a_task_is_configurable() -> None:
    config, nodes = exchangers(1, peer_read_timeout=0.3)
    start = anyio.current_time()
    with anyio.fail_after(10):
        result = await run_with(config, nodes, idle)
    assert result.reason is not None and "did not take task 'run' within 0.3 s" in result.reason
    assert anyio.current_time() - start < 0.3 + MARGIN
