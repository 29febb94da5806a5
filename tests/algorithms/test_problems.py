from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from peerflow.algorithms import PROBLEMS, accuracy, blobs, least_squares, two_moons
from peerflow.algorithms._problems import flatten, loader, make_moons


def batches(data: torch.utils.data.DataLoader) -> list[torch.Tensor]:
    return [labels for _, labels in data]


def test_make_moons_draws_two_balanced_half_circles_reproducibly() -> None:
    points, labels = make_moons(101, 0.0, np.random.default_rng(0))
    assert points.shape == (101, 2) and points.dtype == np.float32
    assert np.bincount(labels).tolist() == [50, 51]
    outer, inner = points[labels == 0], points[labels == 1]
    np.testing.assert_allclose(np.hypot(*outer.T), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.hypot(inner[:, 0] - 1, inner[:, 1] - 0.5), 1.0, atol=1e-6)
    again = make_moons(101, 0.1, np.random.default_rng(5))
    np.testing.assert_array_equal(again[0], make_moons(101, 0.1, np.random.default_rng(5))[0])


def test_two_moons_is_nvflares_example() -> None:
    problem = two_moons()
    assert (problem.nodes, problem.iterations, problem.stepsize) == (6, 1000, 0.01)
    kwargs = problem.node_kwargs(0)
    widths = [p.shape for p in kwargs["model"].parameters()]
    assert widths == [(32, 2), (32,), (32, 32), (32,), (2, 32), (2,)]
    assert len(kwargs["train_dataloader"]) == 10 and len(kwargs["train_dataloader"].dataset) == 320
    assert isinstance(kwargs["loss"], torch.nn.CrossEntropyLoss)
    assert not np.array_equal(problem.train[0][0], problem.train[1][0])


def test_nodes_start_from_one_model_unless_asked_otherwise() -> None:
    problem = two_moons(3)
    same = [flatten(dict(problem.node_model(i).named_parameters())) for i in range(3)]
    assert all(np.array_equal(same[0], s) for s in same)
    apart = dataclasses.replace(problem, same_init=False)
    assert not np.array_equal(flatten(dict(apart.node_model(1).named_parameters())), same[0])
    np.testing.assert_array_equal(flatten(dict(apart.node_model(1).named_parameters())),
                                  flatten(dict(apart.node_model(1).named_parameters())))


def test_loaders_reshuffle_each_epoch_and_repeat_from_their_seed() -> None:
    data = (np.arange(10.0)[:, None], np.arange(10))
    first, second = loader(data, 4, seed=1), loader(data, 4, seed=1)
    epochs = [torch.cat(batches(first)) for _ in range(2)]
    assert [len(b) for b in batches(first)] == [4, 4, 2]
    assert sorted(epochs[0].tolist()) == list(range(10))
    assert not torch.equal(epochs[0], epochs[1])
    assert torch.equal(torch.cat(batches(second)), epochs[0])
    assert torch.cat(batches(loader(data, None))).tolist() == list(range(10))


def test_least_squares_knows_its_gradients_and_optimum() -> None:
    problem = least_squares(4, seed=2)
    theta = np.random.default_rng(0).normal(size=(4, 6))
    expected = []
    for i, row in enumerate(theta):
        kwargs = problem.node_kwargs(i)
        model = kwargs["model"]
        with torch.no_grad():
            model.weight.copy_(torch.from_numpy(row[:5][None]))
            model.bias.copy_(torch.from_numpy(row[5:]))
        inputs, targets = next(iter(kwargs["train_dataloader"]))
        kwargs["loss"](model(inputs), targets).backward()
        expected.append(flatten({"w": model.weight.grad, "b": model.bias.grad}))
    np.testing.assert_allclose(problem.gradients(theta), expected, rtol=1e-12, atol=1e-12)
    at_optimum = problem.gradients(np.tile(problem.optimum, (4, 1)))
    np.testing.assert_allclose(at_optimum.sum(axis=0), 0, atol=1e-10)
    assert np.abs(at_optimum).max() > 0.1  # heterogeneous: no node is at its own optimum
    assert problem.objective(problem.optimum) < problem.objective(problem.optimum + 0.01)


def test_blobs_are_split_unevenly_with_skewed_labels() -> None:
    problem = blobs(5, seed=1)
    sizes = [len(labels) for _, labels in problem.train]
    assert sizes == sorted(sizes) and sizes[-1] >= 5 * sizes[0]
    shares = [np.bincount(labels, minlength=3) / len(labels) for _, labels in problem.train]
    assert max(np.ptp(s) for s in shares) > 0.3
    model = problem.node_model(0)
    assert 0.0 <= accuracy(model, problem.node_kwargs(0)["test_dataloader"]) <= 1.0


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_every_built_in_problem_builds_for_any_node_count(name: str) -> None:
    problem = PROBLEMS[name](3, 4)
    assert problem.nodes == 3 and problem.name == name
    inputs, targets = next(iter(problem.node_kwargs(2)["train_dataloader"]))
    output = problem.node_model(2)(inputs)
    assert torch.isfinite(problem.loss()(output, targets))
