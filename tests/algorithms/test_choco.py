"""CHOCO-gossip and CHOCO-SGD over the runtime: exact gossip without compression, the
average and the optimum with top-k, and the bytes each node sends."""

from __future__ import annotations

from typing import Any

import anyio
import numpy as np
import pytest
import torch

import peerflow
from peerflow import Config
from peerflow.algorithms import (
    Algorithm,
    StepExecutor,
    choco_gossip,
    choco_sgd,
    error_feedback_dgd,
    metropolis_hastings,
    mixing_matrix,
    node_generator,
    parse_compressor,
    random_connected,
)

NETWORK = metropolis_hastings(random_connected(5, seed=3))
W = mixing_matrix(NETWORK)[0]
DIM = 20
X0 = np.random.default_rng(7).normal(size=(5, DIM))
OPTIMUM = np.random.default_rng(8).normal(size=DIM)
DESIGNS = np.random.default_rng(9).normal(size=(5, 8, DIM)) / np.sqrt(8)


class Quadratic(StepExecutor):
    """f_i(x) = ||A_i (x - x*)||^2 / 2, float64: every node's optimum is x*, so the
    optimum of the sum is x* too (a known answer that DGD-like methods reach exactly)."""

    def __init__(self, make: Any, x0: np.ndarray, design: np.ndarray) -> None:
        super().__init__(sync_timeout=10.0)
        self.make, self.design = make, torch.from_numpy(design)
        self.x0 = torch.from_numpy(x0.copy())
        self.history: list[np.ndarray] = [x0]
        self.bytes = 0

    async def gradient(self, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        residual = self.design @ (x["w"] - torch.from_numpy(OPTIMUM))
        return {"w": self.design.T @ residual}

    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        algorithm: Algorithm = self.make(self.id)
        before = self.sent_bytes()
        await self.run_steps(algorithm, algorithm.init({"w": self.x0}), self,
                             extra["iterations"],
                             lambda state: self.history.append(state.x["w"].numpy().copy()))
        self.bytes = self.sent_bytes() - before
        return {}


async def _run(make: Any, iterations: int, transport: str) -> dict[str, Quadratic]:
    executors = {node: Quadratic(make, x0, design)
                 for node, x0, design in zip(NETWORK.node_ids, X0, DESIGNS, strict=True)}
    with anyio.fail_after(60):
        result = await peerflow.run(Config(NETWORK, {"iterations": iterations}), executors,
                                    transport)
    assert result.ok, result.reason
    return executors


def _trajectory(executors: dict[str, Quadratic]) -> np.ndarray:
    return np.array([ex.history for ex in executors.values()]).transpose(1, 0, 2)


def _gossip(spec: str, gamma: float) -> Any:
    return lambda node: choco_gossip(gamma, parse_compressor(spec), node_generator(node))


def _sgd(spec: str, gamma: float, stepsize: float) -> Any:
    return lambda node: choco_sgd(stepsize, gamma, parse_compressor(spec), node_generator(node))


@pytest.mark.timeout(120)
async def test_choco_gossip_without_compression_and_gamma_one_is_exact_gossip(
        transport: str) -> None:
    trajectory = _trajectory(await _run(_gossip("none", 1.0), 30, transport))
    expected = [X0]
    for _ in range(30):
        expected.append(W @ expected[-1])
    np.testing.assert_allclose(trajectory, np.array(expected), rtol=0, atol=1e-12)


def _squeeze(spec: str, gamma: float, stepsize: float) -> Any:
    return lambda node: error_feedback_dgd(stepsize, gamma, parse_compressor(spec),
                                           node_generator(node))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("make", [_sgd, _squeeze], ids=["choco-sgd", "error-feedback-dgd"])
async def test_compressed_dgd_without_compression_and_gamma_one_is_dgd(
        make: Any, transport: str) -> None:
    trajectory = _trajectory(await _run(make("none", 1.0, 0.3), 30, transport))
    expected = [X0]
    for _ in range(30):
        mixed = W @ expected[-1]
        grads = np.einsum("nki,nk->ni", DESIGNS, np.einsum("nki,ni->nk", DESIGNS,
                                                           mixed - OPTIMUM))
        expected.append(mixed - 0.3 * grads)
    np.testing.assert_allclose(trajectory, np.array(expected), rtol=0, atol=1e-12)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("spec", ["top-k:0.1", "random-k:0.2", "qsgd:4"])
async def test_choco_gossip_with_compression_reaches_the_average(spec: str) -> None:
    final = _trajectory(await _run(_gossip(spec, 0.2), 600, "memory"))[-1]
    assert np.abs(final - X0.mean(axis=0)).max() < 1e-6


@pytest.mark.timeout(120)
async def test_choco_sgd_with_top_k_reaches_the_least_squares_optimum(transport: str) -> None:
    final = _trajectory(await _run(_sgd("top-k:0.1", 0.3, 0.2), 1500, transport))[-1]
    assert np.abs(final - OPTIMUM).max() < 1e-6


@pytest.mark.timeout(120)
async def test_each_node_sends_a_tenth_of_the_bytes_with_top_k_five_percent(
        transport: str) -> None:
    dense = await _run(_gossip("none", 1.0), 10, transport)
    sparse = await _run(_gossip("top-k:0.05", 0.2), 10, transport)
    for node in NETWORK.node_ids:
        assert dense[node].bytes > 10 * DIM * 8
        assert sparse[node].bytes < dense[node].bytes * 0.6


@pytest.mark.timeout(120)
async def test_error_feedback_gossip_keeps_the_average_and_narrows_the_spread() -> None:
    trajectory = _trajectory(await _run(_squeeze("top-k:0.1", 0.2, 0.0), 300, "memory"))
    np.testing.assert_allclose(trajectory[-1].mean(axis=0), X0.mean(axis=0), rtol=0,
                               atol=1e-12)
    spread = [np.ptp(x, axis=0).max() for x in trajectory]
    assert spread[-1] < spread[0] / 4  # slower than CHOCO: no copies of the neighbours
