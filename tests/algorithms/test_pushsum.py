from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import anyio
import numpy as np
import pytest
import torch

import peerflow
from peerflow import Config
from peerflow.algorithms import (
    ConsensusExecutor,
    GTExecutor,
    LearningExecutor,
    PushDIGingExecutor,
    PushSumExecutor,
    SubgradientPushExecutor,
    column_stochastic,
    dgd_reference,
    is_column_stochastic,
    least_squares,
    metropolis_hastings,
    mixing_matrix,
    push_diging_reference,
    push_sum_reference,
    random_directed,
    subgradient_push_reference,
)
from peerflow.algorithms._problems import flatten

DIRECTED = metropolis_hastings(random_directed(6, seed=1))
X0 = np.random.default_rng(7).normal(size=6)


async def average(executor: Callable[[float], Any], iterations: int) -> np.ndarray:
    executors = {node: executor(float(x)) for node, x in zip(DIRECTED.node_ids, X0, strict=True)}
    with anyio.fail_after(30):
        result = await peerflow.run(Config(DIRECTED, {"iterations": iterations}), executors)
    assert result.ok, result.reason
    return np.array([ex.value_history for ex in executors.values()]).T


def test_the_push_matrix_is_column_stochastic_and_the_graph_is_not_balanced() -> None:
    a, ids = column_stochastic(DIRECTED)
    assert ids == DIRECTED.node_ids and is_column_stochastic(a)
    assert not is_column_stochastic(mixing_matrix(DIRECTED)[0])


async def test_push_sum_finds_the_average_where_plain_consensus_does_not() -> None:
    pushed = await average(PushSumExecutor, 150)
    plain = await average(ConsensusExecutor, 150)
    np.testing.assert_allclose(pushed, push_sum_reference(column_stochastic(DIRECTED)[0], X0, 150),
                               rtol=0, atol=1e-12)
    assert np.abs(pushed[-1] - X0.mean()).max() < 1e-9
    assert np.abs(plain[-1] - plain[-1].mean()).max() < 1e-9  # plain consensus converged ...
    assert np.abs(plain[-1] - X0.mean()).max() > 1e-2  # ... to the wrong value


async def test_push_sum_mixes_tensors_in_their_dtype() -> None:
    executors = {node: PushSumExecutor(torch.full((2,), float(i), dtype=torch.float64))
                 for i, node in enumerate(DIRECTED.node_ids)}
    with anyio.fail_after(30):
        result = await peerflow.run(Config(DIRECTED, {"iterations": 100}), executors)
    assert result.ok, result.reason
    final = torch.stack([ex.current_value for ex in executors.values()])
    assert final.dtype == torch.float64
    torch.testing.assert_close(final, torch.full_like(final, 2.5), rtol=0, atol=1e-9)


async def train(executor: type[LearningExecutor], extra: dict[str, Any], transport: str = "memory"
                ) -> tuple[np.ndarray, np.ndarray, Any]:
    problem = dataclasses.replace(least_squares(6, seed=3), same_init=False)
    executors = {node: executor(**problem.node_kwargs(i)) for i, node in
                 enumerate(DIRECTED.node_ids)}
    x0 = np.array([flatten(ex.trainable()) for ex in executors.values()])
    with anyio.fail_after(60):
        result = await peerflow.run(Config(DIRECTED, extra), executors, transport)
    assert result.ok, result.reason
    return x0, np.array([flatten(ex.state.x) for ex in executors.values()]), problem


@pytest.mark.parametrize(("executor", "reference", "options"), [
    (SubgradientPushExecutor, subgradient_push_reference, {"power": 0.5}),
    (PushDIGingExecutor, push_diging_reference, {}),
], ids=["subgradient-push", "push-diging"])
async def test_push_algorithms_equal_their_matrix_form_on_a_directed_graph(
        executor: type[LearningExecutor], reference: Callable[..., np.ndarray],
        options: dict[str, float], transport: str) -> None:
    x0, final, problem = await train(executor, {"iterations": 40, "stepsize": 0.02, **options},
                                     transport)
    expected = reference(column_stochastic(DIRECTED)[0], x0, problem.gradients, 0.02, 40,
                         **options)
    np.testing.assert_allclose(final, expected[-1], rtol=0, atol=1e-9)


async def test_push_diging_reaches_the_optimum_where_gradient_tracking_does_not() -> None:
    extra = {"iterations": 250, "stepsize": 0.05}
    _, pushed, problem = await train(PushDIGingExecutor, extra)
    _, pulled, _ = await train(GTExecutor, extra)
    assert np.abs(pushed - problem.optimum).max() < 1e-6
    assert np.abs(pulled - pulled.mean(axis=0)).max() < 1e-6  # GT agreed ...
    assert np.abs(pulled - problem.optimum).max() > 1e-2  # ... on the wrong point


def test_subgradient_push_error_shrinks_with_its_step_where_dgd_keeps_a_bias() -> None:
    # The executors follow these matrix forms (tested above); the property is the recursion's.
    problem = dataclasses.replace(least_squares(6, seed=3), same_init=False)
    x0 = np.array([flatten(dict(problem.node_model(i).named_parameters())) for i in range(6)])
    push, pull = column_stochastic(DIRECTED)[0], mixing_matrix(DIRECTED)[0]
    error = {(name, a): np.abs(run(m, x0, problem.gradients, a, 400)[-1] - problem.optimum).max()
             for name, run, m in (("push", subgradient_push_reference, push),
                                  ("dgd", dgd_reference, pull)) for a in (0.05, 0.02)}
    assert error["push", 0.02] < 0.5 * error["push", 0.05]
    assert min(error["dgd", 0.02], error["dgd", 0.05]) > 5 * error["push", 0.02]
