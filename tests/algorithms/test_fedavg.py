"""Federated averaging: the weighted average, rounds, min_clients and wait time, aborts."""

from __future__ import annotations

import time
from typing import Any

import anyio
import numpy as np
import pytest

import peerflow
from peerflow.agents import RC, AgentClosed, AsyncAgent, MetaKey, TaskResult
from peerflow.algorithms import (
    AgentTrainer,
    ResultError,
    RoundRecord,
    ScatterAndGather,
    TrainerExecutor,
    aggregate,
    sites_config,
)

SITES = ["site-1", "site-2", "site-3"]
MODEL = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.zeros(2, np.float32)}


def shift_trainer(shift: float, steps: int | None, delay: float = 0.0, rc: str = RC.OK) -> Any:
    """A trainer adding ``shift`` to every weight, reporting ``steps`` (none if None)."""
    async def train(weights: dict[str, np.ndarray], meta: dict[str, Any]) -> Any:
        await anyio.sleep(delay)
        for value in weights.values():
            value += shift  # in place: its own copy
        return rc, ({} if steps is None else {MetaKey.NUM_STEPS_CURRENT_ROUND: steps}), weights
    return train


def run_sag(trainers: dict[str, Any], transport: str = "memory", **options: Any
            ) -> tuple[peerflow.RunResult, ScatterAndGather]:
    config = sites_config(trainers)
    controller = ScatterAndGather(config, MODEL, **options)
    executors = {site: TrainerExecutor(train) for site, train in trainers.items()}
    result = peerflow.simulate(config, executors, transport, controller=controller,
                               allow_disconnected=True)
    return result, controller


def test_the_weighted_average_is_numpys() -> None:
    rng = np.random.default_rng(0)
    results = {s: {"w": rng.normal(size=(4, 5)).astype(np.float32)} for s in SITES}
    weights = {"site-1": 3.0, "site-2": 1.0, "site-3": 12.5}
    got = aggregate(results, weights, {"w": np.zeros((4, 5), np.float32)})
    expected = np.average(np.stack([results[s]["w"].astype(np.float64) for s in SITES]),
                          axis=0, weights=[weights[s] for s in SITES]).astype(np.float32)
    assert got["w"].dtype == np.float32
    np.testing.assert_array_equal(got["w"], expected)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("transport", ["memory", "tcp"])
def test_rounds_average_the_sites_weighted_by_their_steps(transport: str) -> None:
    steps = {"site-1": 10, "site-2": 30, "site-3": None}  # site-3 reports none: weight 1
    shifts = {"site-1": 1.0, "site-2": -2.0, "site-3": 0.5}
    result, controller = run_sag({s: shift_trainer(shifts[s], steps[s]) for s in SITES},
                                 transport, num_rounds=3, min_clients=3)
    assert result.ok, result.reason
    expected = {name: value.astype(np.float64) for name, value in MODEL.items()}
    weights = np.array([10.0, 30.0, 1.0])
    for _ in range(3):
        expected = {name: np.average(np.stack([(v.astype(np.float32) + shifts[s]).astype(
            np.float64) for s in SITES]), axis=0, weights=weights).astype(np.float32)
            for name, v in expected.items()}
    for name, value in controller.global_weights.items():
        np.testing.assert_array_equal(value, expected[name])
    assert [r.weights for r in controller.rounds] == [dict(zip(SITES, weights, strict=True))] * 3
    assert result.results["site-3"] == {"contributed": [0, 1, 2], "late": []}


@pytest.mark.timeout(30)
def test_a_round_waits_for_min_clients_then_at_most_the_wait_time() -> None:
    trainers = {"site-1": shift_trainer(1.0, 1), "site-2": shift_trainer(1.0, 1),
                "site-3": shift_trainer(100.0, 1, delay=1.5)}
    started = time.perf_counter()
    result, controller = run_sag(trainers, num_rounds=2, min_clients=2,
                                 wait_time_after_min_received=0.2)
    assert result.ok, result.reason
    assert time.perf_counter() - started < 1.5  # neither round waited for site-3
    assert [r.late for r in controller.rounds] == [["site-3"], ["site-3"]]
    np.testing.assert_array_equal(controller.global_weights["b"], [2.0, 2.0])

    result, controller = run_sag(trainers, num_rounds=1, min_clients=2,
                                 wait_time_after_min_received=5.0)
    assert result.ok and controller.rounds[0].late == []  # it came within the wait time
    assert controller.rounds[0].seconds < 3.0
    np.testing.assert_allclose(controller.global_weights["b"], [34.0, 34.0])


@pytest.mark.timeout(30)
def test_a_trainer_returning_a_bad_code_aborts_the_job_naming_its_site() -> None:
    trainers = {"site-1": shift_trainer(1.0, 1),
                "site-2": shift_trainer(1.0, 1, rc=RC.EXECUTION_EXCEPTION),
                "site-3": shift_trainer(1.0, 1, delay=5.0)}
    started = time.perf_counter()
    result, controller = run_sag(trainers, num_rounds=3, min_clients=3)
    assert time.perf_counter() - started < 4.0  # at once, not when site-3 answers
    assert result.status == "aborted" and result.node == "site-2"
    assert result.reason == ("site 'site-2': the trainer returned EXECUTION_EXCEPTION for "
                             "task 'train' in round 0")
    assert controller.rounds == []


@pytest.mark.timeout(30)
def test_a_result_that_does_not_fit_the_model_aborts_naming_its_site() -> None:
    async def wrong(weights: dict[str, np.ndarray], meta: dict[str, Any]) -> Any:
        return RC.OK, {}, {"w": weights["w"][:1], "b": weights["b"]}

    result, _ = run_sag({"site-1": shift_trainer(1.0, 1), "site-2": wrong}, min_clients=2)
    assert result.status == "aborted" and result.node == "site-2"
    assert "site 'site-2' result: 'w' has shape [1, 3], the global model's is [2, 3]" \
        in str(result.reason)


@pytest.mark.parametrize("meta", [{MetaKey.NUM_STEPS_CURRENT_ROUND: 0},
                                  {MetaKey.NUM_STEPS_CURRENT_ROUND: "x"}, [1]])
def test_a_bad_step_count_is_refused(meta: Any) -> None:
    from peerflow.algorithms._fedavg import check_result

    with pytest.raises(ResultError, match="site 's'"):
        check_result("s", MODEL, meta, MODEL)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match=r"min_clients must be in 1..3"):
        ScatterAndGather(sites_config(SITES), MODEL, min_clients=4)
    with pytest.raises(ResultError, match="initial weights"):
        ScatterAndGather(sites_config(SITES), {})


async def agent_loop(site: AgentTrainer, rc: str, steps: int) -> None:
    """An in-process trainer behind an agent: adds ``steps``, reports them, answers ``rc``."""
    address = await site.agent.wait_listening()
    async with AsyncAgent(address, site.agent.agent_id, heartbeat_timeout=5.0) as agent:
        while True:
            try:
                task = await agent.get_task()
            except AgentClosed:
                return
            assert task is not None
            assert task.meta[MetaKey.TOTAL_ROUND] == 2
            await agent.submit_result(TaskResult({k: v + steps for k, v in task.data.items()},
                                                 {MetaKey.NUM_STEPS_CURRENT_ROUND: steps}, rc))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("rc", [RC.OK, RC.EXECUTION_EXCEPTION])
async def test_agent_backed_sites_train_through_their_agents(rc: str) -> None:
    config = sites_config(SITES[:2])
    controller = ScatterAndGather(config, MODEL, num_rounds=2, min_clients=2)
    sites = {s: AgentTrainer(f"{s}-agent", heartbeat_timeout=5.0) for s in SITES[:2]}
    async with anyio.create_task_group() as group:
        group.start_soon(agent_loop, sites["site-1"], RC.OK, 1)
        group.start_soon(agent_loop, sites["site-2"], rc, 3)
        result = await peerflow.run(config, sites, controller=controller,
                                    allow_disconnected=True)
    if rc == RC.OK:
        assert result.ok, result.reason
        # weighted by the steps each trainer reports: (1 * 1 + 3 * 3) / 4 per round
        np.testing.assert_allclose(controller.global_weights["w"], MODEL["w"] + 5)
        assert isinstance(controller.rounds[0], RoundRecord)
        assert controller.rounds[1].weights == {"site-1": 1.0, "site-2": 3.0}
    else:
        assert result.status == "aborted" and result.node == "site-2"
        assert "EXECUTION_EXCEPTION" in str(result.reason)
