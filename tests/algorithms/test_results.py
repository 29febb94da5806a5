"""``to_result`` / ``load_result``: a node's result restores what a report reads of it."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
import torch

import peerflow
from peerflow import Config
from peerflow.algorithms import (
    ConsensusExecutor,
    GTAdamExecutor,
    LearningExecutor,
    PushSumExecutor,
    metropolis_hastings,
    ring,
    two_moons,
)

NETWORK = metropolis_hastings(ring(3))


async def run(executors: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Run in memory (strict: every result goes through the codec); each node's result."""
    with anyio.fail_after(30):
        result = await peerflow.run(Config(NETWORK, extra), executors)
    assert result.ok, result.reason
    return result.results


def learners() -> dict[str, LearningExecutor]:
    problem = two_moons(3, seed=1)
    return {node: GTAdamExecutor(**problem.node_kwargs(i))
            for i, node in enumerate(NETWORK.node_ids)}


async def test_a_restored_learning_node_has_the_runs_losses_parameters_and_model() -> None:
    ran = learners()
    results = await run(ran, {"iterations": 12, "stepsize": 0.05, "beta1": 0.8})
    restored = learners()
    for node, executor in restored.items():
        executor.load_result(results[node])
        original = ran[node]
        assert executor.train_loss_sequence == original.train_loss_sequence
        assert executor.test_loss_sequence == original.test_loss_sequence
        assert executor.state.x.keys() == original.state.x.keys()
        assert all(torch.equal(executor.state.x[k], v) for k, v in original.state.x.items())
        assert all(torch.equal(p, q) for p, q in zip(executor.model.parameters(),
                                                   original.model.parameters(), strict=True))
        assert executor.test_accuracy is None
        assert executor.to_result().keys() == original.to_result().keys()


@pytest.mark.parametrize("kind", [ConsensusExecutor, PushSumExecutor])
async def test_a_restored_averaging_node_has_the_runs_history(kind: type[Any]) -> None:
    ran = {node: kind(float(i)) for i, node in enumerate(NETWORK.node_ids)}
    results = await run(ran, {"iterations": 7})
    for node, original in ran.items():
        executor = kind(99.0)
        executor.load_result(results[node])
        assert executor.value_history == original.value_history
        assert (executor.initial_value, executor.current_value) == (
            original.initial_value, original.current_value)


def test_a_result_without_its_fields_is_refused() -> None:
    with pytest.raises(KeyError):
        learners()["site-1"].load_result({"params": {}})
    with pytest.raises(KeyError):
        PushSumExecutor(0.0).load_result({})
