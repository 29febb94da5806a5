"""Agents in real processes: blocking trainers, killed agents, killed nodes."""

from __future__ import annotations

import contextlib
import os
import re
import runpy
import signal
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
import torch
from anyio.abc import Process

import peerflow
from peerflow.actors import (
    Config,
    ConfigError,
    Controller,
    RunResult,
    Runtime,
    TaskFailed,
    local_configs,
)
from peerflow.agents import (
    AgentClosed,
    AgentProcesses,
    AsyncAgent,
    LinkSettings,
    TaskExchanger,
    TaskResult,
)
from peerflow.algorithms import (
    AGENT_LEARNING_EXECUTORS,
    LEARNING_EXECUTORS,
    ConsensusExecutor,
    metropolis_hastings,
    path,
    two_moons,
)
from peerflow.cli._agents import run_with_agents, serve_with_agent
from peerflow.cli._distributed import status_lines
from peerflow.transport import MemoryTransport

HB = {"heartbeat_interval": 0.1, "heartbeat_timeout": 1.0}
MARGIN = 2.0

TRAINER = textwrap.dedent("""
    import os, signal, sys, time
    from peerflow.agents import RC, Agent, AgentClosed, TaskResult

    mode = sys.argv[1]
    with Agent() as agent:
        for answered in range(10**9):
            try:
                task = agent.get_task()
            except AgentClosed as exc:
                print("closed:", exc, flush=True)
                break
            if mode == "die" and answered == int(sys.argv[2]):
                os.kill(os.getpid(), signal.SIGKILL)
            if mode == "hang":
                print("hanging", flush=True)
                time.sleep(3600)
            end = time.perf_counter() + float(sys.argv[2]) if mode == "busy" else 0
            while time.perf_counter() < end:  # pure Python: holds the GIL most of the time
                sum(range(1000))
            rc = RC.EXECUTION_EXCEPTION if mode == "fail" else RC.OK
            agent.submit_result(TaskResult({"data": task.data, "pid": os.getpid()}, return_code=rc))
""")

NODE = textwrap.dedent("""
    import sys, anyio, peerflow
    from peerflow.actors import Config, Network, Node
    from peerflow.agents import TaskExchanger

    async def main():
        node = TaskExchanger("trainer", heartbeat_interval=0.1,
                             heartbeat_timeout=float(sys.argv[1]))
        async def announce():
            print("%s %d" % await node.agent.wait_listening(), flush=True)
        async with anyio.create_task_group() as group:
            group.start_soon(announce)
            await peerflow.run(Config(Network((Node("site-1"),)), {}), {"site-1": node})

    anyio.run(main)
""")


@pytest.fixture
def trainer(tmp_path: Path) -> Path:
    script = tmp_path / "trainer.py"
    script.write_text(TRAINER)
    return script


@asynccontextmanager
async def connected(argv: list[str], nodes: int = 2, **settings: Any
                    ) -> AsyncIterator[tuple[Controller, dict[str, Process]]]:
    """Configured TaskExchanger nodes whose agent processes are all connected."""
    config = Config(metropolis_hastings(path(nodes)), {})
    exchangers = {node: TaskExchanger(f"{node}-trainer", **{**HB, **settings})
                  for node in config.network.node_ids}
    async with AgentProcesses(argv, grace=0.5) as agents, \
            Runtime(MemoryTransport(strict=True)) as runtime:  # nodes stop first: agents leave
        for name, node in exchangers.items():
            await runtime.spawn(node, name)
            agents.launch(name, node)
        controller = await runtime.spawn(Controller(exchangers))
        await controller.send_and_wait("config", {n: c.to_dict() for n, c in
                                                  local_configs(config).items()}, timeout=5)
        with anyio.fail_after(20):  # process start-up is slow on a busy machine
            while not all(n.agent.status()["connected"] for n in exchangers.values()):
                await anyio.sleep(0.02)
        yield controller, agents.processes


async def test_blocking_trainer_processes_answer_many_tasks(trainer: Path) -> None:
    with anyio.fail_after(30):
        async with connected([sys.executable, str(trainer), "echo"]) as (controller, _):
            for i in range(20):
                answers = await controller.broadcast_and_wait("train", {"round": i}, timeout=5)
                assert [a["data"] for a in answers.values()] == [{"round": i}] * 2
    pids = {a["pid"] for a in answers.values()}
    assert len(pids) == 2 and os.getpid() not in pids


async def test_a_whole_run_with_launched_agents_completes(trainer: Path) -> None:
    network = metropolis_hastings(path(2))
    nodes = {n: TaskExchanger(f"{n}-trainer", heartbeat_interval=0.1, heartbeat_timeout=10)
             for n in network.node_ids}
    with anyio.fail_after(30):
        result = await run_with_agents(Config(network, {"iterations": 1}), nodes,
                                       [sys.executable, str(trainer), "echo"])
    assert result.ok, result.reason
    assert [r["data"] for r in result.results.values()] == [{"iterations": 1}] * 2


async def test_a_long_task_loses_no_heartbeat(trainer: Path) -> None:
    busy = 3 * HB["heartbeat_timeout"]
    with anyio.fail_after(30):
        async with connected([sys.executable, str(trainer), "busy", str(busy)], 1) as (c, _):
            start = anyio.current_time()
            answers = await c.broadcast_and_wait("train", "long", timeout=busy + 5)
            assert anyio.current_time() - start > busy
    assert answers["site-1"]["data"] == "long"


async def test_a_code_that_is_not_ok_aborts_naming_node_agent_and_code(trainer: Path) -> None:
    with anyio.fail_after(30):
        async with connected([sys.executable, str(trainer), "fail"], 1) as (controller, _):
            with pytest.raises(TaskFailed):
                await controller.broadcast_and_wait("train", None, timeout=5)
    assert controller.panic_report is not None
    assert controller.panic_report.reason == ("agent 'site-1-trainer' of node 'site-1' "
                                              "returned EXECUTION_EXCEPTION for task 'train'")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "frozen"])
async def test_an_agent_lost_mid_task_aborts_within_heartbeat_timeout_naming_it(
        trainer: Path, how: signal.Signals) -> None:
    with anyio.fail_after(30):
        async with connected([sys.executable, str(trainer), "hang"]) as (controller, processes):
            async with anyio.create_task_group() as group:
                group.start_soon(expect_failure, controller)
                await anyio.sleep(0.5)  # both agents have accepted the task and hang
                processes["site-2"].send_signal(how)
                lost = anyio.current_time()
            if how == signal.SIGSTOP:
                processes["site-2"].kill()
    assert anyio.current_time() - lost < HB["heartbeat_timeout"] + MARGIN
    assert controller.panic_report is not None
    assert controller.panic_report.reason.startswith(
        "agent 'site-2-trainer' of node 'site-2' is gone: ")


async def test_an_agent_killed_after_some_tasks_is_reported_lost_after_them(trainer: Path,
                                                                           ) -> None:
    with anyio.fail_after(30):
        async with connected([sys.executable, str(trainer), "die", "5"], 1) as (controller, _):
            for i in range(5):
                await controller.broadcast_and_wait("train", i, timeout=5)
            await expect_failure(controller)
    assert controller.panic_report is not None
    reason = controller.panic_report.reason
    assert reason.startswith("agent 'site-1-trainer' of node 'site-1' is gone: its process "
                             "was killed by SIGKILL (it answered 5 tasks and "), reason
    assert "never connected" not in reason


RAISER = textwrap.dedent("""
    from peerflow.agents import Agent

    agent = Agent()
    agent.start()
    task = agent.get_task()
    raise RuntimeError("out of memory")  # no stop(), no submit_result()
""")


async def test_a_blocking_agent_whose_script_raises_lets_its_process_exit_at_once(
        tmp_path: Path) -> None:
    script = tmp_path / "raiser.py"
    script.write_text(RAISER)
    network = metropolis_hastings(path(1))
    nodes = {"site-1": TaskExchanger("site-1-trainer", heartbeat_timeout=30)}
    with anyio.fail_after(20):  # not heartbeat_timeout: the node hears why at once
        async with AgentProcesses([sys.executable, str(script)], grace=30) as agents:
            agents.launch("site-1", nodes["site-1"])
            result = await peerflow.run(Config(network, {}), nodes)
            with anyio.fail_after(5):  # the process exits by itself, within the grace
                await agents.processes["site-1"].wait()
    assert result.reason == ("agent 'site-1-trainer' of node 'site-1' stopped during task "
                             "'run' (the trainer raised RuntimeError: out of memory)")
    assert agents.processes["site-1"].returncode == 1


async def expect_failure(controller: Controller) -> None:
    with pytest.raises(TaskFailed):
        await controller.broadcast_and_wait("train", None, timeout=10)


async def read_line(process: Process) -> str:
    assert process.stdout is not None
    data = b""
    while not data.endswith(b"\n"):
        data += await process.stdout.receive(1)
    return data.decode()


async def test_a_killed_node_closes_its_agent_at_once(tmp_path: Path) -> None:
    script = tmp_path / "node.py"
    script.write_text(NODE)
    process = await anyio.open_process([sys.executable, str(script), "30"], stderr=None)
    try:
        with anyio.fail_after(20):
            host, port = (await read_line(process)).split()
            async with AsyncAgent(f"{host}:{port}", "trainer", heartbeat_timeout=30) as agent:
                task = await agent.get_task()
                assert task is not None and task.task_name == "run"
                process.kill()
                killed = anyio.current_time()
                await agent.submit_result(TaskResult("too late"))
                with pytest.raises(AgentClosed, match="node 'site-1' is gone: the connection "
                                   "was lost; nothing listens at .* any more"):
                    await agent.get_task()
                assert anyio.current_time() - killed < 2.0  # not heartbeat_timeout (30 s)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.aclose()


async def test_an_agent_with_the_wrong_id_is_refused_and_the_run_names_it(trainer: Path,
                                                                          ) -> None:
    network = metropolis_hastings(path(1))
    nodes = {"site-1": TaskExchanger("site-1-trainer", heartbeat_timeout=10)}
    command = ["env", "PEERFLOW_AGENT_ID=intruder", sys.executable, str(trainer), "echo"]
    with anyio.fail_after(30):
        result = await run_with_agents(Config(network, {}), nodes, command)
    assert result.status == "aborted" and result.reason is not None
    assert result.reason.startswith("agent 'site-1-trainer' of node 'site-1' is gone: "
                                    "its process exited with code 1")
    assert result.reason.endswith("refused: node 'site-1' refused agent 'intruder': "
                                  "it expects 'site-1-trainer')")


async def test_an_agent_command_that_cannot_start_aborts_the_run_at_once() -> None:
    network = metropolis_hastings(path(1))
    nodes = {"site-1": TaskExchanger("site-1-trainer", heartbeat_timeout=30)}
    start = anyio.current_time()
    with anyio.fail_after(20):
        result = await run_with_agents(Config(network, {}), nodes, "/no/such/trainer --fast")
    assert result.status == "aborted" and anyio.current_time() - start < 10
    assert result.reason == ("agent 'site-1-trainer' of node 'site-1' is gone: its command "
                             "'/no/such/trainer --fast' cannot start: [Errno 2] No such file or "
                             "directory: '/no/such/trainer' (it never connected)")


async def test_a_node_process_starts_its_agent_once_its_executor_is_built(trainer: Path,
                                                                         ) -> None:
    async def serve(build: Any) -> Any:  # what serve_node does, in short
        node = build({"agent_id": "site-1-trainer"})
        async with Runtime(MemoryTransport(strict=True)) as runtime:
            await runtime.spawn(node, "site-1")
            controller = await runtime.spawn(Controller(["site-1"]))
            return await controller.broadcast_and_wait("train", 7, timeout=10)

    def build(spec: dict[str, Any]) -> Any:
        return TaskExchanger(spec["agent_id"], heartbeat_timeout=10)

    command = [sys.executable, str(trainer), "echo"]
    with anyio.fail_after(30):
        answers = await serve_with_agent(command, "site-1", serve, build)
        assert answers["site-1"]["data"] == 7
        with pytest.raises(ConfigError, match="'site-1': --agent-command given, but this job's "
                                              "ConsensusExecutor hosts no agent"):
            await serve_with_agent(command, "site-1", serve, lambda _: ConsensusExecutor(0.0))


def test_peerflow_status_shows_each_nodes_agent() -> None:
    row = TaskExchanger("site-1-trainer", "127.0.0.1:7001").agent.status()
    row.update(node="site-1", connected=True, connected_since=0.0, last_heartbeat=1.0,
               address="127.0.0.1:7001", task="train")
    report = {"run": "r", "state": "running", "controller": {"address": "c", "connections": []},
              "nodes": [{"name": "site-1", "address": "a", "iteration": 3, "connections": [],
                         "agents": [row]}]}
    line = status_lines(report)[-1]
    assert line.split()[:3] == ["agent", "site-1-trainer", "127.0.0.1:7001"]
    assert "connected since" in line and "last heartbeat" in line and "task 'train'" in line


TRAINER_EXAMPLE = Path(__file__).parents[1] / "examples" / "trainer.py"


def learning_job(algorithm: str) -> tuple[Config, dict[str, Any], dict[str, Any]]:
    """Two-moons on 2 nodes: in-process executors, and agent-backed ones for the same nodes."""
    problem, iterations = two_moons(2, seed=3), 23  # two epochs of 10 batches, and 3 more
    network = metropolis_hastings(path(2))
    config = Config(network, {"iterations": iterations, "stepsize": 0.05})
    local = {node: LEARNING_EXECUTORS[algorithm](**problem.node_kwargs(i))
             for i, node in enumerate(network.node_ids)}
    agents = {node: AGENT_LEARNING_EXECUTORS[algorithm](
        f"{node}-agent", settings=LinkSettings(heartbeat_interval=0.2, heartbeat_timeout=40),
        init_data={"problem": "two-moons", "nodes": 2, "seed": 3, "node_index": i})
        for i, node in enumerate(network.node_ids)}
    return config, local, agents


def assert_same_run(expected: RunResult, result: RunResult, local: dict[str, Any],
                    agents: dict[str, Any]) -> None:
    assert expected.ok and result.ok, result.reason
    for node, executor in local.items():
        for kind in ("train", "test"):
            got = result.results[node][f"{kind}_loss_sequence"]
            want = expected.results[node][f"{kind}_loss_sequence"]
            assert (got["iteration"], got["loss"]) == (want["iteration"], want["loss"])
            assert len(got["loss"]) == 4
        for name, value in executor.state.x.items():
            assert torch.equal(agents[node].state.x[name], value)


async def test_dgd_with_blocking_trainer_processes_gives_the_in_process_losses() -> None:
    config, local, agents = learning_job("dgd")
    with anyio.fail_after(60):
        expected = await peerflow.run(config, local)
        result = await run_with_agents(config, agents, [sys.executable, str(TRAINER_EXAMPLE)])
    assert_same_run(expected, result, local, agents)
    assert all(0.5 < a.test_accuracy <= 1 for a in agents.values())


@pytest.mark.parametrize("algorithm", sorted(LEARNING_EXECUTORS))
async def test_every_algorithm_gives_the_in_process_losses_with_in_process_agents(
        algorithm: str) -> None:
    trainer_class = runpy.run_path(str(TRAINER_EXAMPLE))["Trainer"]

    async def trainer(node: Any) -> None:  # the example's loop, in this event loop
        address, trainer = await node.agent.wait_listening(), trainer_class()
        async with AsyncAgent(address, node.agent.agent_id, heartbeat_timeout=20) as agent:
            while True:
                try:
                    task = await agent.get_task()
                except AgentClosed:
                    return
                await agent.submit_result(TaskResult(trainer.answer(task)))

    config, local, agents = learning_job(algorithm)
    with anyio.fail_after(60):
        expected = await peerflow.run(config, local)
        async with anyio.create_task_group() as group:
            for node in agents.values():
                group.start_soon(trainer, node)
            result = await peerflow.run(config, agents)
    assert_same_run(expected, result, local, agents)


STOPPING_TRAINER = textwrap.dedent("""
    import os, runpy, signal, sys

    namespace = runpy.run_path(sys.argv[1])  # the example trainer, stopped at its third step
    Trainer, gradient, steps = namespace["Trainer"], namespace["Trainer"].gradient, []

    def stopping(self, params):
        steps.append(1)
        if len(steps) == 3 and os.environ["PEERFLOW_NODE"] == "site-2":
            os.kill(os.getpid(), signal.SIGSTOP)
        return gradient(self, params)

    Trainer.gradient = stopping
    namespace["main"]()
""")


async def test_a_stopped_agent_is_named_before_its_neighbours_sync_timeout(tmp_path: Path,
                                                                          ) -> None:
    script = tmp_path / "stopping.py"
    script.write_text(STOPPING_TRAINER)
    config, _, agents = learning_job("dgd")
    with anyio.fail_after(60):
        result = await run_with_agents(config, agents, [sys.executable, str(script),
                                                        str(TRAINER_EXAMPLE)], grace=0.5)
    assert result.status == "aborted" and result.node == "site-2", result.reason
    assert result.reason is not None and re.match(  # stopped before or after "taken" went
        r"agent 'site-2-agent' of node 'site-2' (gave no result for|did not take) task "
        r"'local_step' within 5 s \(.*; last heard 5\.\d s ago\)$", result.reason), result.reason
