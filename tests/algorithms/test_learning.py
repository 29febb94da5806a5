from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import anyio
import numpy as np
import pytest
import torch
from torch import nn

import peerflow
from peerflow import Config, Network
from peerflow.algorithms import (
    Algorithm,
    DGDExecutor,
    ExtraExecutor,
    GTADAMExecutor,
    GTAdamExecutor,
    GTExecutor,
    LearningExecutor,
    Problem,
    dgd_reference,
    extra_reference,
    gt_reference,
    gtadam_reference,
    least_squares,
    metropolis_hastings,
    mixing_matrix,
    random_connected,
    random_directed,
    two_moons,
)
from peerflow.algorithms._problems import flatten, loader

UNDIRECTED = metropolis_hastings(random_connected(6, seed=1))
DIRECTED = metropolis_hastings(random_directed(6, seed=1))
ITERATIONS, STEPSIZE = 40, 0.02
ADAM = {"beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6}


def quadratic() -> Problem:
    return dataclasses.replace(least_squares(6, seed=3), same_init=False)


async def train(executor: type[LearningExecutor], network: Network, problem: Problem,
                extra: dict[str, Any], transport: str = "memory", **kwargs: Any
                ) -> tuple[dict[str, LearningExecutor], np.ndarray]:
    executors = {node: executor(**problem.node_kwargs(i), **kwargs)
                 for i, node in enumerate(network.node_ids)}
    x0 = np.array([flatten(ex.trainable()) for ex in executors.values()])
    with anyio.fail_after(60):
        result = await peerflow.run(Config(network, extra), executors, transport)
    assert result.ok, result.reason
    return executors, x0


def finals(executors: dict[str, LearningExecutor]) -> np.ndarray:
    return np.array([flatten(ex.state.x) for ex in executors.values()])


CASES = [(DGDExecutor, dgd_reference, {}), (GTExecutor, gt_reference, {}),
         (GTAdamExecutor, gtadam_reference, ADAM)]


@pytest.mark.parametrize("network", [UNDIRECTED, DIRECTED], ids=["undirected", "directed"])
@pytest.mark.parametrize(("executor", "reference", "options"), CASES, ids=["dgd", "gt", "gtadam"])
async def test_nvflare_algorithms_equal_their_matrix_form_in_float64(
        executor: type[LearningExecutor], reference: Callable[..., np.ndarray],
        options: dict[str, float], network: Network, transport: str) -> None:
    problem = quadratic()
    extra = {"iterations": ITERATIONS, "stepsize": STEPSIZE, **options}
    executors, x0 = await train(executor, network, problem, extra, transport)
    w, ids = mixing_matrix(network)
    assert ids == list(executors)
    expected = reference(w, x0, problem.gradients, STEPSIZE, ITERATIONS, **options)
    np.testing.assert_allclose(finals(executors), expected[-1], rtol=0, atol=1e-9)
    assert not np.allclose(expected[-1], expected[0])


async def test_extra_equals_its_matrix_form_in_float64(transport: str) -> None:
    problem = quadratic()
    extra = {"iterations": ITERATIONS, "stepsize": STEPSIZE}
    executors, x0 = await train(ExtraExecutor, UNDIRECTED, problem, extra, transport)
    expected = extra_reference(mixing_matrix(UNDIRECTED)[0], x0, problem.gradients, STEPSIZE,
                               ITERATIONS)
    np.testing.assert_allclose(finals(executors), expected[-1], rtol=0, atol=1e-9)


@pytest.mark.parametrize("executor", [GTExecutor, ExtraExecutor], ids=["gt", "extra"])
async def test_gt_and_extra_reach_the_exact_optimum_with_a_constant_step(
        executor: type[LearningExecutor]) -> None:
    problem = quadratic()
    executors, _ = await train(executor, UNDIRECTED, problem, {"iterations": 250,
                                                               "stepsize": 0.05})
    assert np.abs(finals(executors) - problem.optimum).max() < 1e-6


async def test_two_moons_trains_well_below_its_starting_loss() -> None:
    problem = two_moons(6, seed=0)
    executors, _ = await train(GTExecutor, UNDIRECTED, problem,
                               {"iterations": 200, "stepsize": 0.05})
    for ex in executors.values():
        start, end = ex.train_loss_sequence[0].loss, ex.train_loss_sequence[-1].loss
        assert end < 0.6 * start
        assert ex.test_loss_sequence[-1].loss < 0.6 * ex.test_loss_sequence[0].loss
        assert len(ex.train_loss_sequence) == 1 + 200 // 10


class Frozen(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(2, 3, dtype=torch.float64).requires_grad_(False)
        self.head = nn.Linear(3, 1, dtype=torch.float64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


class Spy(GTExecutor):
    sent: list[Any]

    async def exchange(self, value: Any, iteration: int) -> dict[str, Any]:
        self.sent = [*getattr(self, "sent", []), value]
        return await super().exchange(value, iteration)


def frozen_kwargs(seed: int, batches: int = 1) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    data = (rng.normal(size=(12, 2)), rng.normal(size=(12, 1)))
    return {"model": Frozen(), "loss": nn.MSELoss(),
            "train_dataloader": loader(data, 12 // batches, seed=seed),
            "test_dataloader": loader(data, None)}


async def test_only_trainable_parameters_travel_by_name_in_the_models_dtype() -> None:
    network = metropolis_hastings(random_connected(3, seed=0))
    executors = {node: Spy(**frozen_kwargs(i)) for i, node in enumerate(network.node_ids)}
    frozen = {node: ex.model.embed.weight.clone() for node, ex in executors.items()}
    with anyio.fail_after(30):
        result = await peerflow.run(Config(network, {"iterations": 5, "stepsize": 0.1}),
                                    executors)
    assert result.ok, result.reason
    for node, ex in executors.items():
        payload = ex.sent[0]
        assert set(payload) == {"x", "y"} and set(payload["x"]) == {"head.weight", "head.bias"}
        assert all(t.dtype == torch.float64 for t in payload["x"].values())
        assert torch.equal(ex.model.embed.weight, frozen[node])
        assert torch.equal(ex.model.head.weight, ex.state.x["head.weight"])
        assert not torch.equal(ex.sent[0]["x"]["head.weight"], ex.sent[-1]["x"]["head.weight"])


async def test_losses_are_recorded_per_epoch_with_time_and_nothing_is_written(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    network = metropolis_hastings(random_connected(2, seed=0))
    executors = {node: GTExecutor(**frozen_kwargs(i, batches=3))
                 for i, node in enumerate(network.node_ids)}
    with anyio.fail_after(30):
        result = await peerflow.run(Config(network, {"iterations": 7, "stepsize": 0.1}),
                                    executors)
    assert result.ok, result.reason
    for node, ex in executors.items():
        times = [record.seconds for record in ex.train_loss_sequence]
        assert len(times) == 4 and times[0] == 0 and times == sorted(times)
        assert [record.iteration for record in ex.train_loss_sequence] == [0, 3, 6, 7]
        assert len(ex.test_loss_sequence) == 4 and ex.val_loss_sequence == []
        assert result.results[node]["train_loss_sequence"] == {
            "iteration": [0, 3, 6, 7], "seconds": times,
            "loss": [record.loss for record in ex.train_loss_sequence]}
    assert list(tmp_path.iterdir()) == []


class Plain(NamedTuple):
    x: dict[str, torch.Tensor]


def model_consensus(extra: dict[str, Any]) -> Algorithm:
    """x <- W x: a new algorithm is pure functions; this one wants no gradient."""
    return Algorithm(Plain, lambda state: {"x": state.x}, lambda state, mixed: (None, mixed),
                     lambda mixed, grad: Plain(mixed["x"]))


class ModelConsensus(LearningExecutor):
    def build_algorithm(self, extra: dict[str, Any]) -> Algorithm:
        return model_consensus(extra)


@pytest.mark.parametrize("make", [lambda kw: LearningExecutor(**kw, algorithm=model_consensus),
                                  lambda kw: ModelConsensus(**kw)], ids=["factory", "subclass"])
async def test_a_new_algorithm_is_a_step_function_or_a_subclass(make: Callable[..., Any]) -> None:
    problem, network = quadratic(), UNDIRECTED
    executors = {node: make(problem.node_kwargs(i)) for i, node in enumerate(network.node_ids)}
    x0 = np.array([flatten(ex.trainable()) for ex in executors.values()])
    with anyio.fail_after(30):
        result = await peerflow.run(Config(network, {"iterations": 30}), executors)
    assert result.ok, result.reason
    expected = np.linalg.matrix_power(mixing_matrix(network)[0], 30) @ x0
    np.testing.assert_allclose(finals(executors), expected, rtol=0, atol=1e-12)


async def test_an_executor_without_an_algorithm_aborts_the_run_naming_it() -> None:
    problem, network = quadratic(), metropolis_hastings(random_connected(2, seed=0))
    executors = [LearningExecutor(**problem.node_kwargs(i), sync_timeout=2) for i in range(2)]
    with anyio.fail_after(30):
        result = await peerflow.run(Config(network, {"iterations": 3}), executors)
    assert result.status == "aborted"
    assert "LearningExecutor has no algorithm" in (result.reason or "")


def test_executors_keep_nvflares_names_and_constructor_shape() -> None:
    assert GTADAMExecutor is GTAdamExecutor
    for executor in (DGDExecutor, GTExecutor, GTAdamExecutor):
        names = list(inspect.signature(executor).parameters)
        assert names[:6] == ["model", "loss", "train_dataloader", "test_dataloader",
                             "val_dataloader", "sync_timeout"]
