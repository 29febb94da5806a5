"""Learning agents that misbehave: wrong results, silence, a task never taken."""

from __future__ import annotations

import re
import runpy
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
import torch

import peerflow
from peerflow.actors import Config, RunResult
from peerflow.agents import AgentClosed, AsyncAgent, LinkSettings, Task, TaskResult
from peerflow.algorithms import AGENT_LEARNING_EXECUTORS, metropolis_hastings, path

TRAINER = runpy.run_path(str(Path(__file__).parents[2] / "examples" / "trainer.py"))["Trainer"]
SYNC = 1.0  # so each task must be answered within 0.5 s
EXTRA = {"iterations": 6, "stepsize": 0.05}
Answer = Callable[[Any, Task], Awaitable[Any]]  # (the example's trainer, task) -> result


async def good(trainer: Any, task: Task) -> Any:
    return trainer.answer(task)


async def serve(node: Any, respond: Answer) -> None:
    """The example trainer's loop, in this event loop, answering with ``respond``."""
    trainer = TRAINER()
    address = await node.agent.wait_listening()
    async with AsyncAgent(address, node.agent.agent_id, heartbeat_timeout=5) as agent:
        while True:
            try:
                task = await agent.get_task()
            except AgentClosed:
                return
            assert task is not None
            await agent.submit_result(TaskResult(await respond(trainer, task)))


async def run_job(bad: Answer, nodes: int = 2) -> RunResult:
    """A dgd job on two moons whose last node's agent answers with ``bad``."""
    network = metropolis_hastings(path(nodes))
    config = Config(network, EXTRA)
    agents = {node: AGENT_LEARNING_EXECUTORS["dgd"](
        f"{node}-agent", sync_timeout=SYNC,
        settings=LinkSettings(heartbeat_interval=0.1, heartbeat_timeout=5),
        init_data={"problem": "two-moons", "nodes": nodes, "seed": 3, "node_index": i})
        for i, node in enumerate(network.node_ids)}

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            for node, executor in agents.items():
                group.start_soon(serve, executor, bad if node == f"site-{nodes}" else good)
            return await peerflow.run(config, agents)


def on_step(change: Callable[[dict[str, torch.Tensor]], dict[str, Any]]) -> Answer:
    """An agent whose gradients pass through ``change``."""
    async def respond(trainer: Any, task: Task) -> Any:
        result = trainer.answer(task)
        return change(result) if task.task_name == "local_step" else result
    return respond


BAD_GRADIENTS = {
    "a wrong shape": (lambda g: {**g, "0.weight": torch.zeros(1, dtype=torch.float64)},
                      "'grads.0.weight': expected shape [32, 2] float32, got [1] float64"),
    "a missing name": (lambda g: {k: v for k, v in g.items() if k != "4.bias"},
                       "'grads': expected tensors named ['0.bias', '0.weight', '2.bias', "
                       "'2.weight', '4.bias', '4.weight'], got ['0.bias', '0.weight', "
                       "'2.bias', '2.weight', '4.weight']"),
    "a NaN": (lambda g: {**g, "2.bias": torch.full((32,), float("nan"))},
              "'grads.2.bias': expected finite values, got 32 NaN and 0 infinite of 32"),
    "an infinity": (lambda g: {**g, "4.bias": torch.tensor([1.0, float("inf")])},
                    "'grads.4.bias': expected finite values, got 0 NaN and 1 infinite of 2"),
    "float64 for float32": (lambda g: {k: v.double() for k, v in g.items()},
                            "'grads.0.weight': expected shape [32, 2] float32, "
                            "got [32, 2] float64"),
    "a numpy array": (lambda g: {**g, "4.bias": g["4.bias"].numpy()},
                      "'grads.4.bias': expected shape [2] float32, got ndarray [2] float32"),
}


@pytest.mark.parametrize("case", BAD_GRADIENTS)
async def test_a_gradient_that_does_not_match_the_parameters_aborts_naming_agent_and_field(
        case: str) -> None:
    change, field = BAD_GRADIENTS[case]
    result = await run_job(on_step(change))
    assert result.status == "aborted" and result.node == "site-2"
    assert result.reason == f"agent 'site-2-agent' of node 'site-2' result field {field}"


@pytest.mark.parametrize(("losses", "field"), [
    ({"train": float("nan")}, "'evaluate.train': expected a finite float, got nan"),
    ({"train": 0.5, "test": float("inf")}, "'evaluate.test': expected a finite float, got inf"),
    ({"train": 0.5, "accuracy": 1.5}, "'evaluate.accuracy': expected a float in [0, 1], got 1.5"),
    ({"test": 0.5}, "'evaluate': expected {train, test?, val?, accuracy?}, got dict"),
])
async def test_losses_that_are_not_finite_abort_naming_agent_and_field(
        losses: dict[str, float], field: str) -> None:
    async def respond(trainer: Any, task: Task) -> Any:
        return losses if task.task_name == "evaluate" else trainer.answer(task)

    result = await run_job(respond)
    assert result.status == "aborted" and result.node == "site-2"
    assert result.reason == f"agent 'site-2-agent' of node 'site-2' result field {field}"


async def test_initial_parameters_that_are_not_finite_abort_naming_agent_and_field() -> None:
    async def respond(trainer: Any, task: Task) -> Any:
        result = trainer.answer(task)
        if task.task_name == "init":
            result["params"]["4.bias"] = torch.tensor([0.0, float("nan")])
        return result

    result = await run_job(respond)
    assert result.reason == ("agent 'site-2-agent' of node 'site-2' result field "
                             "'init.params.4.bias': expected finite values, got 1 NaN and "
                             "0 infinite of 2")


async def test_a_silent_agent_is_named_before_its_neighbours_sync_timeout() -> None:
    steps = 0

    async def silent_after_two_steps(trainer: Any, task: Task) -> Any:
        nonlocal steps
        steps += task.task_name == "local_step"
        if steps == 3:
            await anyio.sleep(2 * SYNC)  # heartbeats go on: alive, but late
        return trainer.answer(task)

    result = await run_job(silent_after_two_steps, nodes=3)
    assert result.status == "aborted" and result.node == "site-3"
    assert result.reason is not None and result.reason.startswith(
        "agent 'site-3-agent' of node 'site-3' gave no result for task 'local_step' within "
        "0.5 s (it took the task 0.")


async def test_an_agent_that_never_calls_get_task_is_named_before_the_sync_timeout() -> None:
    network = metropolis_hastings(path(2))
    agents = {node: AGENT_LEARNING_EXECUTORS["dgd"](
        f"{node}-agent", sync_timeout=SYNC, init_data={
            "problem": "two-moons", "nodes": 2, "seed": 3, "node_index": i})
        for i, node in enumerate(network.node_ids)}

    async def idle(node: Any) -> None:
        address = await node.agent.wait_listening()
        async with AsyncAgent(address, node.agent.agent_id, heartbeat_timeout=5) as agent:
            while agent.is_running():
                await anyio.sleep(0.05)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(serve, agents["site-1"], good)
            group.start_soon(idle, agents["site-2"])
            result = await peerflow.run(Config(network, EXTRA), agents)
    assert result.status == "aborted" and result.node == "site-2"
    assert result.reason is not None and result.reason.startswith(
        "agent 'site-2-agent' of node 'site-2' did not take task 'init' within 0.5 s "
        "(it received the task, but get_task() was not called; last heard 0.")


async def test_a_stall_traced_from_a_neighbours_sync_timeout_ends_at_the_silent_agent() -> None:
    network = metropolis_hastings(path(3))
    agents = {node: AGENT_LEARNING_EXECUTORS["dgd"](  # the agents may take longer than the sync
        f"{node}-agent", sync_timeout=SYNC, settings=LinkSettings(task_wait_time=10 * SYNC),
        init_data={"problem": "two-moons", "nodes": 3, "seed": 3, "node_index": i})
        for i, node in enumerate(network.node_ids)}
    late, steps = anyio.Event(), []

    async def silent_at_the_second_step(trainer: Any, task: Task) -> Any:
        steps.append(task.task_name)
        if steps.count("local_step") == 2:
            await late.wait()  # released once the run is over
        return trainer.answer(task)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            for node, executor in agents.items():
                group.start_soon(serve, executor,
                                 silent_at_the_second_step if node == "site-3" else good)
            result = await peerflow.run(Config(network, EXTRA), agents)
            late.set()
    assert result.status == "aborted" and result.node == "site-3"
    assert re.search(r"agent 'site-3-agent' of node 'site-3' has not answered task "
                     r"'local_step' \(it took the task 1\.\d s ago; last heard \d\.\d s ago\)$",
                     result.reason or ""), result.reason
