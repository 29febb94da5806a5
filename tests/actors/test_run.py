from __future__ import annotations

from typing import Any

import anyio
import numpy as np
import pytest

import peerflow
from peerflow import Config, Neighbor, Network, Node
from peerflow.actors import ConfigError, SyncAlgorithmExecutor
from peerflow.algorithms import (
    ConsensusExecutor,
    directed_ring,
    metropolis_hastings,
    mixing_matrix,
    random_connected,
    random_directed,
)

MARGIN = 2.0


def consensus_job(network: Network, iterations: int, timeout: float = 5.0
                  ) -> tuple[Config, dict[str, ConsensusExecutor], np.ndarray]:
    rng = np.random.default_rng(7)
    x0 = rng.normal(size=len(network.nodes))
    executors = {node: ConsensusExecutor(float(x), sync_timeout=timeout)
                 for node, x in zip(network.node_ids, x0, strict=True)}
    return Config(network, {"iterations": iterations}), executors, x0


def matrix_trajectory(network: Network, x0: np.ndarray, iterations: int) -> np.ndarray:
    w, ids = mixing_matrix(network)
    assert ids == network.node_ids
    rows = [x0]
    for _ in range(iterations):
        rows.append(w @ rows[-1])
    return np.array(rows)


def run_histories(executors: dict[str, ConsensusExecutor]) -> np.ndarray:
    return np.array([executors[n].value_history for n in executors]).T


@pytest.mark.parametrize("graph", [random_connected(12, seed=3), directed_ring(5),
                                   random_directed(8, p=0.3, seed=1)],
                         ids=["undirected-random", "directed-ring", "directed-random"])
async def test_consensus_follows_the_matrix_form_exactly(graph: Any) -> None:
    network = metropolis_hastings(graph)
    config, executors, x0 = consensus_job(network, 40)
    with anyio.fail_after(30):
        result = await peerflow.run(config, executors)
    assert result.status == "completed", result.reason
    np.testing.assert_allclose(run_histories(executors), matrix_trajectory(network, x0, 40),
                               rtol=0, atol=1e-12)
    assert result.results[network.node_ids[0]]["value_history"] == \
        executors[network.node_ids[0]].value_history


def test_simulate_is_the_blocking_form_and_runs_the_callers_objects() -> None:
    network = metropolis_hastings(random_connected(6, seed=42))
    config, executors, x0 = consensus_job(network, 50)
    result = peerflow.simulate(config, list(executors.values()))
    assert result.ok and result.wall_time > 0
    spread = np.ptp([ex.current_value for ex in executors.values()])
    assert spread < 1e-3
    assert np.isclose(np.mean([ex.current_value for ex in executors.values()]), x0.mean())


async def test_torch_tensor_values_mix_like_numbers() -> None:
    torch = pytest.importorskip("torch")
    network = metropolis_hastings(random_connected(5, seed=1))
    executors = {n: ConsensusExecutor(torch.full((3,), float(i), dtype=torch.float64))
                 for i, n in enumerate(network.node_ids)}
    with anyio.fail_after(30):
        result = await peerflow.run(Config(network, {"iterations": 30}), executors)
    assert result.ok
    final = torch.stack([ex.current_value for ex in executors.values()])
    assert torch.allclose(final, torch.full_like(final, 2.0), atol=1e-3)


class Raiser(ConsensusExecutor):
    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        await self.exchange(self.current_value, 0)
        raise RuntimeError("disk full")


class Silent(ConsensusExecutor):
    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        await self.exchange(self.current_value, 0)
        await anyio.sleep_forever()
        return {}


async def test_a_node_that_raises_aborts_the_run_naming_it() -> None:
    network = metropolis_hastings(random_connected(6, seed=42))
    config, executors, _ = consensus_job(network, 1000, timeout=2.0)
    bad = network.node_ids[2]
    executors[bad] = Raiser(0.0, sync_timeout=2.0)
    start = anyio.current_time()
    with anyio.fail_after(2.0 + MARGIN + 5):
        result = await peerflow.run(config, executors)
    assert result.status == "aborted"
    assert result.node == bad and result.iteration == 0
    assert result.reason == f"node {bad!r}: RuntimeError: disk full"
    assert anyio.current_time() - start < 2.0 + MARGIN


async def test_a_node_that_stops_sending_aborts_within_the_sync_timeout() -> None:
    network = metropolis_hastings(random_connected(6, seed=42))
    config, executors, _ = consensus_job(network, 1000, timeout=0.5)
    silent = network.node_ids[4]
    executors[silent] = Silent(0.0, sync_timeout=0.5)
    start = anyio.current_time()
    with anyio.fail_after(0.5 + MARGIN + 5):
        result = await peerflow.run(config, executors)
    elapsed = anyio.current_time() - start
    assert result.status == "aborted"
    assert result.node == silent and result.roots == (silent,) and result.iteration == 0
    assert (result.reason or "").endswith(f"waits on {silent} (it. 1) <- {silent} silent since "
                                          "it. 0")
    assert elapsed < 0.5 + MARGIN


class Counting(SyncAlgorithmExecutor):
    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        for t in range(extra["iterations"]):
            await self.exchange(t, t)
        return {"done": extra["iterations"]}


async def test_progress_reports_every_nodes_iteration() -> None:
    network = metropolis_hastings(random_connected(4, seed=0))
    seen: list[dict[str, int | None]] = []
    executors = [Counting() for _ in network.nodes]
    with anyio.fail_after(10):
        result = await peerflow.run(Config(network, {"iterations": 200}), executors,
                                    on_progress=lambda p: seen.append(dict(p)))
    assert result.ok and result.results == dict.fromkeys(network.node_ids, {"done": 200})
    assert seen[-1] == dict.fromkeys(network.node_ids, 199)


async def test_executors_must_match_the_networks_nodes() -> None:
    network = metropolis_hastings(random_connected(3, seed=0))
    with pytest.raises(ConfigError, match=r"no executor for \['site-3'\]"):
        await peerflow.run(Config(network, {"iterations": 1}),
                           {"site-1": Counting(), "site-2": Counting()})


def test_a_network_with_bad_weights_is_rejected_with_the_node_named() -> None:
    bad = {"nodes": [{"id": "a", "neighbors": [{"id": "b", "weight": 0.7},
                                                {"id": "c", "weight": 0.6}]},
                     {"id": "b", "neighbors": []}, {"id": "c", "neighbors": []}]}
    with pytest.raises(ConfigError, match=r"node 'a': neighbor weights sum to 1.3, above 1"):
        Network.from_dict(bad)
    with pytest.raises(ConfigError, match="unknown neighbor 'z'"):
        Network((Node("a", (Neighbor("z", 0.1),)),)).validate()
    with pytest.raises(ConfigError, match="must be a finite number >= 0"):
        Network((Node("a", (Neighbor("b", -0.1),)), Node("b"))).validate()


def test_nvflare_shaped_configs_load_as_is_and_round_trip() -> None:
    nvflare = {"extra": {"iterations": 50},
               "network": {"nodes": [{"id": 1, "neighbors": [{"id": 2, "weight": 0.5}]},
                                     {"id": 2, "neighbors": [{"id": 1, "weight": 0.5}]}]}}
    config = Config.from_dict(nvflare)
    assert config.network.node_ids == ["1", "2"]
    assert config.network.out_neighbors() == {"1": ["2"], "2": ["1"]}
    assert Config.from_dict(config.to_dict()) == config


class Forger(Counting):
    """A node that tries to abort its neighbours as if it were the controller."""

    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        for neighbor in self.out_neighbors:
            self.tell(neighbor, "abort", {"reason": "forged", "node": self.id, "iteration": 0},
                      kind="abort")
        return await super().run_algorithm(extra)


async def test_an_abort_from_anyone_but_the_controller_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    network = metropolis_hastings(random_connected(4, seed=0))
    executors = [Forger()] + [Counting() for _ in network.nodes[1:]]
    with anyio.fail_after(10):
        result = await peerflow.run(Config(network, {"iterations": 20}), executors)
    assert result.ok, result.reason
    assert "only its controller 'controller' may abort it" in caplog.text
