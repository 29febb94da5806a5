"""The one step loop: any algorithm, any mixing, any objective (here one with no torch)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import numpy as np
import pytest

import peerflow
from peerflow import Config
from peerflow.algorithms import (
    dgd,
    dgd_reference,
    extra,
    extra_reference,
    metropolis_hastings,
    mixing_matrix,
    random_connected,
)
from peerflow.algorithms._loop import NO_OBJECTIVE, Algorithm, StepExecutor, consensus, push_sum

NETWORK = metropolis_hastings(random_connected(5, seed=2))
TARGETS = np.random.default_rng(4).normal(size=5)
X0 = np.random.default_rng(5).normal(size=5)


class ScalarQuadratic(StepExecutor):
    """f_i(x) = (x - b_i)^2 / 2 on plain floats; the gradient is awaited, as an agent's is."""

    def __init__(self, algorithm: Algorithm, x0: float, target: float) -> None:
        super().__init__(sync_timeout=5.0)
        self.algorithm, self.x0, self.target = algorithm, x0, target
        self.history: list[float] = [x0]

    async def gradient(self, x: float) -> float:
        await anyio.sleep(0)
        return x - self.target

    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        state = self.algorithm.init(self.x0)
        await self.run_steps(self.algorithm, state, self, extra["iterations"],
                             lambda state: self.history.append(state.x))
        return {}


@pytest.mark.parametrize("make, reference", [(dgd, dgd_reference), (extra, extra_reference)],
                         ids=["dgd", "extra"])
async def test_an_objective_that_is_not_a_torch_model_drives_the_learning_steps(
        make: Callable[[float], Algorithm], reference: Callable[..., np.ndarray]) -> None:
    executors = {node: ScalarQuadratic(make(0.1), float(x), float(b))
                 for node, x, b in zip(NETWORK.node_ids, X0, TARGETS, strict=True)}
    with anyio.fail_after(30):
        result = await peerflow.run(Config(NETWORK, {"iterations": 25}), executors)
    assert result.ok, result.reason
    trajectory = np.array([ex.history for ex in executors.values()]).T
    expected = reference(mixing_matrix(NETWORK)[0], X0, lambda x: x - TARGETS, 0.1, 25)
    np.testing.assert_allclose(trajectory, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("algorithm", [consensus(), push_sum()], ids=["consensus", "push-sum"])
def test_averaging_algorithms_send_their_state_and_take_no_local_step(
        algorithm: Algorithm) -> None:
    assert algorithm.send is algorithm.query is algorithm.update is None


async def test_a_gradient_asked_of_no_objective_is_a_type_error_that_says_why() -> None:
    with pytest.raises(TypeError, match="no local objective"):
        await NO_OBJECTIVE.gradient(1.5)
