"""The batched engine gives the actor engine's results: every synchronous algorithm, on
undirected and directed graphs, to 1e-12 in float64 and to float32 rounding in float32."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import torch

import peerflow
from peerflow import Config, Network
from peerflow.algorithms import (
    LEARNING_EXECUTORS,
    ConsensusExecutor,
    LearningExecutor,
    Problem,
    PushSumExecutor,
    batched_obstacle,
    blobs,
    flatten,
    gt,
    least_squares,
    metropolis_hastings,
    random_connected,
    random_directed,
    random_matching,
    simulate_batched,
    two_moons,
)

GRAPHS = {"undirected": metropolis_hastings(random_connected(5, seed=2)),
          "directed": metropolis_hastings(random_directed(5, seed=2)),
          "time-varying": random_matching(5, seed=3, period=4)}
LEARNING = sorted(LEARNING_EXECUTORS)


def learners(algorithm: str, network: Network, problem: Problem,
             **kwargs: Any) -> dict[str, LearningExecutor]:
    executor = LEARNING_EXECUTORS[algorithm]
    return {node: executor(**problem.node_kwargs(i), **kwargs)
            for i, node in enumerate(network.node_ids)}


def both_engines(algorithm: str, network: Network, problem: Problem, iterations: int
                 ) -> tuple[dict[str, LearningExecutor], dict[str, LearningExecutor]]:
    config = Config(network, {"iterations": iterations, "stepsize": problem.stepsize})
    actors, batched = learners(algorithm, network, problem), learners(algorithm, network, problem)
    assert batched_obstacle(config, batched) is None
    expected, result = peerflow.simulate(config, actors), simulate_batched(config, batched)
    assert expected.ok and result.ok, (expected.reason, result.reason)
    assert (expected.engine, result.engine) == ("actors", "batched")
    assert set(result.results) == set(expected.results)
    return actors, batched


def gap(actors: dict[str, Any], batched: dict[str, Any]) -> tuple[float, float]:
    """Largest difference of final parameters, and of recorded losses (same record times)."""
    params = max(np.abs(flatten(actors[n].state.x) - flatten(batched[n].state.x)).max()
                 for n in actors)
    losses = 0.0
    for node, ex in actors.items():
        for kind in ("train", "test"):
            ours = getattr(batched[node], f"{kind}_loss_sequence")
            theirs = getattr(ex, f"{kind}_loss_sequence")
            assert len(ours) == len(theirs) > 2
            assert [a.iteration for a in ours] == [b.iteration for b in theirs]
            losses = max(losses, *(abs(a.loss - b.loss) for a, b in zip(ours, theirs,
                                                                       strict=True)))
    return params, losses


@pytest.mark.timeout(120)
@pytest.mark.parametrize("graph", sorted(GRAPHS))
@pytest.mark.parametrize("algorithm", LEARNING)
def test_every_learning_algorithm_gives_the_actor_engines_float64_results_to_1e_12(
        algorithm: str, graph: str) -> None:
    problem = dataclasses.replace(least_squares(5, seed=4), same_init=False,
                                  stepsize=0.02)

    actors, batched = both_engines(algorithm, GRAPHS[graph], problem, 30)

    params, losses = gap(actors, batched)
    assert params <= 1e-12 and losses <= 1e-12
    assert next(iter(batched.values())).state.x["weight"].dtype == torch.float64


@pytest.mark.timeout(120)
@pytest.mark.parametrize("algorithm", LEARNING)
def test_every_learning_algorithm_gives_the_actor_engines_float32_results_to_rounding(
        algorithm: str) -> None:
    graph = GRAPHS["directed" if algorithm in ("subgradient-push", "push-diging") else
                   "undirected"]
    actors, batched = both_engines(algorithm, graph, two_moons(5, seed=1), 25)

    params, losses = gap(actors, batched)
    assert params <= 2e-5 and losses <= 2e-6  # float32: eps 1.2e-7, over 25 steps
    model = next(iter(batched.values())).model
    assert all(p.dtype == torch.float32 for p in model.parameters())


def averaging(kind: type, network: Network, values: list[Any]) -> dict[str, Any]:
    return {node: kind(value) for node, value in zip(network.node_ids, values, strict=True)}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("graph", sorted(GRAPHS))
@pytest.mark.parametrize("kind", [ConsensusExecutor, PushSumExecutor])
@pytest.mark.parametrize("make", [float, lambda v: np.array([v, -2 * v]),
                                  lambda v: torch.tensor([v, v / 3], dtype=torch.float64)])
def test_consensus_and_push_sum_give_the_actor_engines_histories_to_1e_12(
        kind: type, graph: str, make: Any) -> None:
    network = GRAPHS[graph]
    values = [make(v) for v in np.random.default_rng(5).uniform(size=5)]
    config = Config(network, {"iterations": 40})
    actors, batched = averaging(kind, network, values), averaging(kind, network, values)

    expected, result = peerflow.simulate(config, actors), simulate_batched(config, batched)

    assert expected.ok and result.ok and result.engine == "batched"
    for node, ex in actors.items():
        ours, theirs = batched[node].value_history, ex.value_history
        assert len(ours) == len(theirs) == 41
        assert type(ours[-1]) is type(theirs[-1])
        assert np.abs(np.asarray(ours, dtype=float) - np.asarray(theirs, dtype=float)).max() \
            <= 1e-12
        assert result.results[node]["value_history"] is batched[node].value_history


@pytest.mark.timeout(60)
def test_float32_consensus_stays_float32_and_within_its_rounding() -> None:
    network = GRAPHS["directed"]
    values = [torch.rand(3, generator=torch.Generator().manual_seed(k)) for k in range(5)]
    config = Config(network, {"iterations": 30})
    actors = averaging(ConsensusExecutor, network, values)
    batched = averaging(ConsensusExecutor, network, values)

    peerflow.simulate(config, actors), simulate_batched(config, batched)

    for node, ex in actors.items():
        assert batched[node].current_value.dtype == torch.float32
        assert torch.allclose(batched[node].current_value, ex.current_value, atol=1e-6)


@pytest.mark.timeout(60)
def test_the_batched_engine_takes_a_mixing_matrix_per_iteration() -> None:
    network = GRAPHS["undirected"]
    values = list(np.arange(5.0))
    executors = averaging(ConsensusExecutor, network, values)
    asked = []

    def schedule(t: int) -> Any:  # W(t): averaging over all nodes at odd t, identity else
        import scipy.sparse as sp
        asked.append(t)
        return sp.csr_array(np.full((5, 5), 0.2)) if t % 2 else sp.eye_array(5).tocsr()

    simulate_batched(Config(network, {"iterations": 3}), executors, schedule=schedule)

    assert asked == [0, 1, 2]
    assert executors[network.node_ids[0]].value_history == pytest.approx([0.0, 0.0, 2.0, 2.0])


class Custom(LearningExecutor):
    """A subclass with a run of its own: only actors run it."""


def test_runs_that_cannot_go_batched_say_why() -> None:
    network = GRAPHS["undirected"]
    config = Config(network, {"iterations": 2, "stepsize": 0.1})
    problem = two_moons(5)
    gt = learners("gt", network, problem)
    custom = {node: Custom(**problem.node_kwargs(i)) for i, node in enumerate(network.node_ids)}
    mixed = {**gt, network.node_ids[0]: learners("dgd", network, problem)[network.node_ids[0]]}
    other_model = {**gt, network.node_ids[0]: LEARNING_EXECUTORS["gt"](
        **{**problem.node_kwargs(0), "model": torch.nn.Linear(2, 2)})}

    assert batched_obstacle(config, gt) is None
    assert "Custom is not a built-in executor" in batched_obstacle(config, custom)
    assert "different executors (DGDExecutor, GTExecutor)" in batched_obstacle(config, mixed)
    assert batched_obstacle(config, other_model) == "the nodes' models differ"
    assert "not over 'tcp'" in batched_obstacle(config, gt, "tcp")
    assert batched_obstacle(config, learners("gt", network, blobs(5))) == \
        "the nodes' training batches differ in size"


@pytest.mark.timeout(60)
def test_simulate_with_the_batched_engine_falls_back_to_actors_in_one_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    network = GRAPHS["undirected"]
    config = Config(network, {"iterations": 3, "stepsize": 0.1})
    problem = two_moons(5)
    custom = {node: Custom(algorithm=lambda extra: gt(extra["stepsize"]), **problem.node_kwargs(i))
              for i, node in enumerate(network.node_ids)}

    result = peerflow.simulate(config, custom, engine="batched")

    assert result.ok and result.engine == "actors"
    err = capsys.readouterr().err.splitlines()
    assert err == ["peerflow: cannot run batched (Custom is not a built-in executor (its own "
                   "run_algorithm runs only as an actor)): running the actor engine"]
    batched = peerflow.simulate(config, learners("gt", network, problem), engine="batched")
    assert batched.ok and batched.engine == "batched" and capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="engine must be one of"):
        peerflow.simulate(config, custom, engine="vmap")


@pytest.mark.timeout(120)
def test_the_batched_engine_replays_nvflares_two_moons_losses_to_float32_rounding() -> None:
    """NVFlare's executors read the train loss through the training loader: the batched
    engine draws what each node's loaders draw, so the batches stay NVFlare's."""
    pytest.importorskip("sklearn", reason="nvflare-two-moons needs scikit-learn")
    import json
    from pathlib import Path

    from peerflow.jobs import Job, build_executors, load_network

    data = Path(__file__).parents[1] / "data" / "nvflare_two_moons"
    recorded = json.loads((data / "losses.json").read_text())
    job = Job.learning("gt", load_network(data / "config_fed_server.json"), "nvflare-two-moons",
                       0, 30.0, iterations=recorded["iterations"], stepsize=recorded["stepsize"])
    executors = build_executors(job)

    result = simulate_batched(job.config, executors)

    assert result.ok, result.reason
    for node, ex in executors.items():
        for kind in ("train", "test"):
            theirs = recorded["losses"][node][kind]
            ours = [record.loss for record in getattr(ex, f"{kind}_loss_sequence")][:len(theirs)]
            assert ours == pytest.approx(theirs, abs=1e-6), (node, kind)


@pytest.mark.timeout(60)
def test_on_step_callbacks_see_each_nodes_state_as_on_actors() -> None:
    network, problem = GRAPHS["undirected"], least_squares(5)
    config = Config(network, {"iterations": 6, "stepsize": problem.stepsize})
    seen: dict[str, list[list[tuple[int, np.ndarray]]]] = {"actors": [], "batched": []}

    def engine_run(engine: str) -> None:
        calls: list[tuple[int, np.ndarray]] = []
        seen[engine].append(calls)
        executors = learners("gt", network, problem, on_step=lambda t, state: calls.append(
            (t, flatten(state.x))))
        assert peerflow.simulate(config, executors, engine=engine).engine == engine

    engine_run("actors"), engine_run("batched")
    actors, batched = seen["actors"][0], seen["batched"][0]
    assert sorted(t for t, _ in batched) == sorted(t for t, _ in actors) == \
        sorted(list(range(6)) * 5)
    assert max(np.abs(a - b).max() for (_, a), (_, b) in
               zip(sorted(actors, key=lambda c: (c[0], c[1].tolist())),
                   sorted(batched, key=lambda c: (c[0], c[1].tolist())), strict=True)) < 1e-12
