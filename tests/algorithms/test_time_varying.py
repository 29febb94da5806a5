"""Time-varying networks: runs on a schedule equal the products of its per-iteration
matrices, and a value from a node that is not an in-neighbour at that iteration is dropped."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import numpy as np
import pytest

import peerflow
from peerflow.actors import Config, Network, Schedule, ScheduledMailbox
from peerflow.algorithms import (
    ConsensusExecutor,
    DGDExecutor,
    ExtraExecutor,
    GTExecutor,
    LearningExecutor,
    MixingSchedule,
    NIDSExecutor,
    Problem,
    PushSumExecutor,
    consensus_reference,
    cycle_of_graphs,
    dgd_reference,
    directed_ring,
    exponential_one_peer,
    gt_reference,
    least_squares,
    metropolis_hastings,
    mixing_matrix,
    nids_reference,
    push_sum_reference,
    random_connected,
    random_directed,
    random_matching,
    ring,
    star,
)
from peerflow.algorithms._problems import flatten

N, ITERATIONS = 6, 14
SCHEDULES = {
    "exponential-one-peer": exponential_one_peer(N),
    "random-matching": random_matching(N, seed=2, period=5),
    "cycle-of-graphs": cycle_of_graphs([metropolis_hastings(ring(N)),
                                        metropolis_hastings(star(N)),
                                        metropolis_hastings(random_connected(N, seed=1))]),
}
DIRECTED = cycle_of_graphs([metropolis_hastings(directed_ring(N)),
                            metropolis_hastings(random_directed(N, seed=1))])


async def run(network: Network, executors: dict[str, Any], extra: dict[str, Any],
              transport: str) -> None:
    with anyio.fail_after(60):
        result = await peerflow.run(Config(network, extra), executors, transport)
    assert result.ok, result.reason


async def averaged(schedule: Schedule, transport: str,
                   executor: Callable[[float], ConsensusExecutor] = ConsensusExecutor
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(x0, the values of every node at every iteration, shape (T+1, n))."""
    x0 = np.random.default_rng(0).uniform(size=N)
    executors = {node: executor(float(x)) for node, x in zip(schedule.node_ids, x0, strict=True)}
    await run(schedule, executors, {"iterations": ITERATIONS}, transport)
    return x0, np.array([ex.value_history for ex in executors.values()]).T


@pytest.mark.parametrize("name", SCHEDULES)
async def test_consensus_on_a_schedule_is_the_product_of_its_matrices(name: str,
                                                                      transport: str) -> None:
    schedule = SCHEDULES[name]
    x0, history = await averaged(schedule, transport)
    mixings = MixingSchedule(schedule)
    expected = consensus_reference(mixings.matrix, x0, ITERATIONS)
    np.testing.assert_allclose(history, expected, rtol=0, atol=1e-9)
    product = np.eye(N)
    for t in range(ITERATIONS):  # W(T-1) ... W(0) x0, written out
        product = mixings.matrix(t).toarray() @ product
    np.testing.assert_allclose(history[-1], product @ x0, rtol=0, atol=1e-9)
    union = consensus_reference(mixing_matrix(schedule)[0], x0, ITERATIONS)
    assert np.abs(union[-1] - history[-1]).max() > 1e-6  # the mean W is not what ran


async def test_exponential_one_peer_averages_exactly_in_log2_n_iterations() -> None:
    schedule = exponential_one_peer(8)
    x0 = np.arange(8.0)
    executors = {node: ConsensusExecutor(float(x)) for node, x in zip(schedule.node_ids, x0,
                                                                      strict=True)}
    await run(schedule, executors, {"iterations": 3}, "memory")
    np.testing.assert_allclose([ex.current_value for ex in executors.values()], 3.5,
                               rtol=0, atol=1e-12)


async def test_push_sum_on_a_schedule_pushes_over_each_iterations_out_degree(
        transport: str) -> None:
    x0 = np.random.default_rng(1).uniform(size=N)
    executors = {node: PushSumExecutor(float(x)) for node, x in zip(DIRECTED.node_ids, x0,
                                                                     strict=True)}
    await run(DIRECTED, executors, {"iterations": ITERATIONS}, transport)
    expected = push_sum_reference(MixingSchedule(DIRECTED, push=True).matrix, x0, ITERATIONS)
    np.testing.assert_allclose([ex.current_value for ex in executors.values()], expected[-1],
                               rtol=0, atol=1e-9)


def quadratic() -> Problem:
    return dataclasses.replace(least_squares(N, seed=3), same_init=False)


async def trained(executor: type[LearningExecutor], network: Network, problem: Problem,
                  stepsize: float, iterations: int, transport: str = "memory"
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(x0, the final parameters of every node) of a run of ``executor``."""
    executors = {node: executor(**problem.node_kwargs(i))
                 for i, node in enumerate(network.node_ids)}
    x0 = np.array([flatten(ex.trainable()) for ex in executors.values()])
    await run(network, executors, {"iterations": iterations, "stepsize": stepsize}, transport)
    return x0, np.array([flatten(ex.state.x) for ex in executors.values()])


@pytest.mark.parametrize("name", ["exponential-one-peer", "cycle-of-graphs"])
@pytest.mark.parametrize(("executor", "reference"), [(DGDExecutor, dgd_reference),
                                                     (GTExecutor, gt_reference)],
                         ids=["dgd", "gt"])
async def test_dgd_and_gt_on_a_schedule_follow_the_per_iteration_recursions(
        executor: type[LearningExecutor], reference: Callable[..., np.ndarray], name: str,
        transport: str) -> None:
    problem, schedule = quadratic(), SCHEDULES[name]
    x0, final = await trained(executor, schedule, problem, 0.02, ITERATIONS, transport)
    expected = reference(MixingSchedule(schedule).matrix, x0, problem.gradients, 0.02,
                         ITERATIONS)
    np.testing.assert_allclose(final, expected[-1], rtol=0, atol=1e-9)
    static = reference(mixing_matrix(schedule)[0], x0, problem.gradients, 0.02, ITERATIONS)
    assert np.abs(static[-1] - final).max() > 1e-6


def smoothness(problem: Problem) -> float:
    """L: the largest eigenvalue of the local Hessians (the gradients are affine)."""
    dim = problem.optimum.size
    zero = problem.gradients(np.zeros((N, dim)))
    columns = [problem.gradients(np.tile(e, (N, 1))) - zero for e in np.eye(dim)]
    hessians = np.stack(columns, axis=2)  # (node, i, j)
    return float(max(np.linalg.eigvalsh(h).max() for h in hessians))


async def test_nids_equals_its_matrix_form_in_float64(transport: str) -> None:
    problem, network = quadratic(), metropolis_hastings(random_connected(N, seed=1))
    x0, final = await trained(NIDSExecutor, network, problem, 0.05, ITERATIONS, transport)
    expected = nids_reference(mixing_matrix(network)[0], x0, problem.gradients, 0.05,
                              ITERATIONS)
    np.testing.assert_allclose(final, expected[-1], rtol=0, atol=1e-9)
    assert not np.allclose(expected[-1], expected[0])


async def test_nids_reaches_the_optimum_with_a_step_extra_cannot_take() -> None:
    # On a ring W's smallest eigenvalue is -1/3: EXTRA needs a step below (2/3)/L,
    # NIDS below 2/L whatever the graph.
    problem, network = quadratic(), metropolis_hastings(ring(N))
    stepsize = 1.5 / smoothness(problem)
    _, nids = await trained(NIDSExecutor, network, problem, stepsize, 300)
    assert np.abs(nids - problem.optimum).max() < 1e-8
    _, extra = await trained(ExtraExecutor, network, problem, stepsize, 300)
    assert not np.abs(extra - problem.optimum).max() < 1.0


async def test_the_mailbox_drops_a_value_from_a_node_that_is_no_in_neighbour_at_that_iteration(
        caplog: pytest.LogCaptureFixture) -> None:
    box = ScheduledMailbox("a", [frozenset({"b"}), frozenset({"c"})])
    box.put("c", 0, 1.0)  # c is an in-neighbour at odd iterations only
    box.put("b", 0, 2.0)
    box.put("b", 1, 3.0)
    box.put("c", 1, 4.0)
    box.put("z", 2, 5.0)  # never an in-neighbour
    assert box.dropped == 3
    assert "'c' for iteration 0: it is not an in-neighbour at iteration 0" in caplog.text
    with anyio.fail_after(5):
        assert await box.gather(0, frozenset({"b"}), 1.0) == {"b": 2.0}
        assert await box.gather(1, frozenset({"c"}), 1.0) == {"c": 4.0}


class SendsToEveryPeer(ConsensusExecutor):
    """Sends its value to every node it ever sends to, at every iteration."""

    def exchange(self, value: Any, iteration: int) -> Awaitable[dict[str, Any]]:
        others = [n for n in self.out_neighbors if n not in self.phase(iteration).out_neighbors]
        self.runtime.transport.send_values(self.name, others, "value", iteration, value,
                                           self.runtime.run_id)
        return super().exchange(value, iteration)


async def test_values_from_nodes_out_of_turn_are_dropped_in_a_run(
        transport: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "peerflow.mailbox")
    schedule = SCHEDULES["exponential-one-peer"]
    x0, history = await averaged(schedule, transport, SendsToEveryPeer)
    expected = consensus_reference(MixingSchedule(schedule).matrix, x0, ITERATIONS)
    np.testing.assert_allclose(history, expected, rtol=0, atol=1e-9)
    assert "it is not an in-neighbour at iteration 0" in caplog.text
