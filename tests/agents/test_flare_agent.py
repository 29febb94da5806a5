"""NVFlare's FlareAgent trainer (``flare_trainer.py``: the documented one, only its imports
changed and a ``train`` body added) against peerflow nodes, and the FlareAgent API's rules."""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from anyio.abc import Process

import peerflow
from peerflow.actors import Config, Controller, Runtime
from peerflow.agents import (
    RC,
    AgentClosed,
    AgentRefused,
    AgentServer,
    AsyncAgent,
    CallStateError,
    FlareAgent,
    FlareAgentWithCellPipe,
    LinkSettings,
    MetaKey,
    Task,
    TaskExchanger,
    TaskResult,
    start,
    stop,
)
from peerflow.agents._states import State
from peerflow.algorithms import metropolis_hastings, path
from peerflow.transport import MemoryTransport

TRAINER = Path(__file__).with_name("flare_trainer.py")
NUMPY_KEY = "numpy_key"
AGENT_ID = "ext_trainer_1"
MARGIN = 2.0


def plain(tmp_path: Path) -> Path:
    """The trainer in plain mode: its one ``secure_mode=True`` made False."""
    source = TRAINER.read_text()
    assert source.count("secure_mode=True") == 1
    trainer = tmp_path / "trainer.py"
    trainer.write_text(source.replace("secure_mode=True", "secure_mode=False"))
    return trainer


@asynccontextmanager
async def trainer_process(trainer: Path, address: str, log: Path) -> AsyncIterator[Process]:
    """Run the trainer for site-1 as its launcher would; stopped (and reaped) on the way out."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PEERFLOW_")}
    argv = [sys.executable, str(trainer), "--site_name", "site-1", "--agent_id", AGENT_ID]
    process = await start(argv, {**env, "PEERFLOW_AGENT_ADDRESS": address}, log)
    try:
        yield process
    finally:
        await stop(process, grace=10)


@asynccontextmanager
async def node_and_controller(node: TaskExchanger) -> AsyncIterator[Controller]:
    async with Runtime(MemoryTransport(strict=True)) as runtime:
        await runtime.spawn(node, "site-1")
        yield await runtime.spawn(Controller({"site-1": node}))


def exchanger(listen: str = "127.0.0.1:0") -> TaskExchanger:
    return TaskExchanger(AGENT_ID, listen, heartbeat_interval=0.5, heartbeat_timeout=30)


async def train_twice(controller: Controller) -> np.ndarray:
    weights = np.array([0.5, 1.5])
    for _ in range(2):
        answers = await controller.broadcast_and_wait("train", {NUMPY_KEY: weights}, timeout=30)
        weights = answers["site-1"][NUMPY_KEY]
    return weights


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def address_of(server: AgentServer) -> str:
    assert server.address is not None
    return f"{server.address[0]}:{server.address[1]}"


@pytest.mark.timeout(60)
async def test_the_documented_trainer_trains_returns_meta_and_exits_on_agent_closed(
        tmp_path: Path) -> None:
    listen, log = f"127.0.0.1:{free_port()}", tmp_path / "trainer.log"
    node = exchanger(listen)
    with anyio.fail_after(50):
        async with (trainer_process(plain(tmp_path), listen, log) as process,
                    node_and_controller(node) as controller):  # the node stops first
            weights = await train_twice(controller)
            result = await node.agent.run_task_result(
                "train", {NUMPY_KEY: weights}, meta={MetaKey.CURRENT_ROUND: 2})
            await node.agent.say_goodbye("the job is over")  # as a job's end does
    assert process.returncode == 0, log.read_text()[-2000:]
    assert weights.tolist() == [2.5, 3.5]
    assert result == TaskResult({NUMPY_KEY: result.data[NUMPY_KEY]},
                                {MetaKey.NUM_STEPS_CURRENT_ROUND: 2}, RC.OK)
    assert result.data[NUMPY_KEY].tolist() == [3.5, 4.5]
    out = log.read_text()
    assert out.count("result submitted: True") == 3 and "agent closed - exit" in out
    assert "root_url 'grpc://server:8002' is not used" in out


@pytest.mark.timeout(60)
async def test_a_return_code_that_is_not_ok_aborts_the_job_naming_the_agent(
        tmp_path: Path) -> None:
    node, log = exchanger(), tmp_path / "trainer.log"
    config = Config(metropolis_hastings(path(1)), {"fail": True})
    with anyio.fail_after(50):
        async with anyio.create_task_group() as group:
            results = []

            async def run() -> None:
                results.append(await peerflow.run(config, {"site-1": node}))

            group.start_soon(run)
            await node.agent.wait_listening()
            async with trainer_process(plain(tmp_path), address_of(node.agent), log) as process:
                while not results:
                    await anyio.sleep(0.05)
    assert results[0].status == "aborted" and results[0].node == "site-1"
    assert results[0].reason == (f"agent '{AGENT_ID}' of node 'site-1' returned "
                                 "EXECUTION_EXCEPTION for task 'run': asked to fail")
    assert process.returncode == 0 and "agent closed - exit" in log.read_text()


@pytest.mark.timeout(60)
async def test_a_trainer_started_5_s_before_its_node_waits_for_it(tmp_path: Path) -> None:
    listen, log = f"127.0.0.1:{free_port()}", tmp_path / "trainer.log"
    with anyio.fail_after(50):
        async with trainer_process(plain(tmp_path), listen, log) as process:
            await anyio.sleep(5)
            assert process.returncode is None  # still waiting
            async with node_and_controller(exchanger(listen)) as controller:
                assert (await train_twice(controller)).tolist() == [2.5, 3.5]
    assert process.returncode == 0, log.read_text()[-2000:]


@pytest.mark.timeout(60)
async def test_a_trainer_started_5_s_after_its_node_is_waited_for(tmp_path: Path) -> None:
    node, log = exchanger(), tmp_path / "trainer.log"
    with anyio.fail_after(50):
        async with node_and_controller(node) as controller, anyio.create_task_group() as group:
            trained: list[np.ndarray] = []

            async def train() -> None:
                trained.append(await train_twice(controller))

            group.start_soon(train)  # the task waits at the node for its agent
            await anyio.sleep(5)
            assert node.agent.absence() == "it never connected"
            async with trainer_process(plain(tmp_path), address_of(node.agent), log) as process:
                while not trained:
                    await anyio.sleep(0.05)
                await node.agent.say_goodbye("the job is over")  # as a job's end does
    assert trained[0].tolist() == [2.5, 3.5]
    assert process.returncode == 0, log.read_text()[-2000:]


@pytest.mark.timeout(20)
async def test_the_blocking_flare_agent_enforces_the_call_order_and_carries_meta() -> None:
    server = AgentServer(AGENT_ID, settings=LinkSettings(0.1, 2.0))

    def trainer(address: str) -> list[Any]:
        agent = FlareAgentWithCellPipe(address, AGENT_ID, flare_site_name="site-1",
                                       submit_result_timeout=2.0, heartbeat_timeout=2.0)
        with pytest.raises(CallStateError, match=r"get_task\(\) called before start\(\)"):
            agent.get_task()
        agent.start()
        with pytest.raises(CallStateError, match=r"start\(\) called with no open task"):
            agent.start()
        with pytest.raises(CallStateError, match=r"submit_result\(\) called with no open task"):
            agent.submit_result(TaskResult(1))
        task = agent.get_task()
        with pytest.raises(CallStateError, match=r"get_task\(\) called while a task is open"):
            agent.get_task()
        with pytest.raises(TypeError, match=r"submit_result takes a TaskResult\(data=\.\.\."):
            agent.submit_result({"data": 1})  # type: ignore[arg-type]
        submitted = agent.submit_result(TaskResult(task.data * 2, {"seen": task.meta}))
        with pytest.raises(AgentClosed):
            agent.get_task()
        agent.stop()
        return [task, submitted]

    with anyio.fail_after(15):
        async with anyio.create_task_group() as group:
            await group.start(server.serve, "site-1")
            seen: list[Any] = []

            async def in_thread() -> None:
                seen.extend(await anyio.to_thread.run_sync(trainer, address_of(server)))

            group.start_soon(in_thread)
            result = await server.run_task_result("train", 21, meta={MetaKey.CURRENT_ROUND: 1})
            await server.say_goodbye("the job is over")
            while not seen:
                await anyio.sleep(0.05)
            group.cancel_scope.cancel()
    task, submitted = seen
    assert isinstance(task, Task) and (task.task_name, task.data) == ("train", 21)
    assert task.meta == {"current_round": 1} and submitted is True
    assert result == TaskResult(42, {"seen": {"current_round": 1}}, "OK")
    assert FlareAgent is FlareAgentWithCellPipe


async def test_the_agent_judges_its_node_by_its_own_heartbeat_timeout(
        caplog: pytest.LogCaptureFixture) -> None:
    server = AgentServer(AGENT_ID, settings=LinkSettings(heartbeat_interval=60,
                                                         heartbeat_timeout=60))
    with anyio.fail_after(10), caplog.at_level(logging.WARNING, "peerflow.agents"):
        async with anyio.create_task_group() as group:
            await group.start(server.serve, "site-1")
            async with AsyncAgent(address_of(server), AGENT_ID, heartbeat_timeout=1.0):
                started = anyio.current_time()  # the node beats once, then not for 60 s
                while "(no message for 1 s); reconnecting" not in caplog.text:
                    await anyio.sleep(0.05)
                assert anyio.current_time() - started < 1.0 + MARGIN
            group.cancel_scope.cancel()
    assert "node 'site-1' sends heartbeats every 60 s, but agent" in caplog.text


async def test_a_result_the_node_does_not_confirm_in_time_is_not_said_submitted() -> None:
    server = AgentServer(AGENT_ID, settings=LinkSettings(0.1, 2.0))
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            await group.start(server.serve, "site-1")
            async with AsyncAgent(address_of(server), AGENT_ID,
                                  submit_result_timeout=1e-6) as agent:
                group.start_soon(server.run_task_result, "train", 1)
                task = await agent.get_task()
                assert task is not None
                assert await agent.submit_result(TaskResult(2)) is False  # too soon to hear
                assert agent.calls.state is State.READY  # closed all the same, as in NVFlare
                while server.answered == 0:  # but it was sent, and the node has it
                    await anyio.sleep(0.05)
            group.cancel_scope.cancel()


async def test_a_trainer_for_another_site_is_refused_and_the_node_hears_why() -> None:
    server = AgentServer(AGENT_ID, settings=LinkSettings(0.1, 2.0))
    why = (f"agent '{AGENT_ID}' is for site 'site-2', but node 'site-1' answered at "
           f"127.0.0.1:")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            await group.start(server.serve, "site-1")
            with pytest.raises(AgentRefused, match=why):
                await AsyncAgent(address_of(server), AGENT_ID, site_name="site-2",
                                 heartbeat_timeout=2.0).start()
            while "is for site 'site-2'" not in server.absence():
                await anyio.sleep(0.05)
            group.cancel_scope.cancel()


async def test_a_trainer_whose_own_wait_ends_first_gives_up_after_max_resends() -> None:
    address = f"127.0.0.1:{free_port()}"
    agent = AsyncAgent(address, AGENT_ID, heartbeat_timeout=30, resend_interval=0.05,
                       max_resends=2)
    with anyio.fail_after(10), pytest.raises(AgentClosed, match=r"within 30 s \(3 attempts"):
        await agent.start()
    agent = AsyncAgent(address, AGENT_ID, heartbeat_timeout=0.5, resend_interval=0.05)
    started = anyio.current_time()
    with anyio.fail_after(10), pytest.raises(AgentClosed, match=r"within 0.5 s"):
        await agent.start()
    assert anyio.current_time() - started < 0.5 + MARGIN
