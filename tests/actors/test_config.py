"""Configs that cannot work are refused or repaired before a run, never during it."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import peerflow
from peerflow.actors import Config, ConfigError, LocalConfig, Neighbor, Network, Node
from peerflow.algorithms import ConsensusExecutor

PAIRS = {"nodes": [{"id": "a", "neighbors": [{"id": "b", "weight": 0.5}]},
                   {"id": "b", "neighbors": [{"id": "a", "weight": 0.5}]},
                   {"id": "c", "neighbors": [{"id": "d", "weight": 0.5}]},
                   {"id": "d", "neighbors": [{"id": "c", "weight": 0.5}]}]}
UNWEIGHTED = {"nodes": [{"id": "a", "neighbors": [{"id": "b"}]},
                        {"id": "b", "neighbors": [{"id": "a", "weight": None}, {"id": "c"}]},
                        {"id": "c", "neighbors": [{"id": "b"}]}]}


def executors(values: list[float]) -> list[ConsensusExecutor]:
    return [ConsensusExecutor(value, sync_timeout=2.0) for value in values]


def test_nvflare_shaped_constructor_calls_are_converted_at_construction() -> None:
    nvflare = {"network": {"nodes": [{"id": 1, "neighbors": [{"id": 2, "weight": 0.5}]},
                                     {"id": 2, "neighbors": [{"id": 1, "weight": 1}]}]},
               "extra": {"iterations": 3}}
    config = Config(**nvflare)
    assert config == Config.from_dict(nvflare)
    assert config.network.nodes[0] == Node("1", (Neighbor("2", 0.5),))
    assert Node(id=1, neighbors=[{"id": 2, "weight": 1}]).neighbors == (Neighbor("2", 1.0),)
    assert LocalConfig([{"id": 2}], None, [3]) == LocalConfig((Neighbor("2"),), {}, ("3",))


async def test_integer_node_ids_run_to_completion() -> None:
    config = Config(**{"network": {"nodes": [{"id": 1, "neighbors": [{"id": 2, "weight": 0.5}]},
                                             {"id": 2, "neighbors": [{"id": 1, "weight": 0.5}]}]},
                       "extra": {"iterations": 3}})
    with anyio.fail_after(10):
        result = await peerflow.run(config, {1: ConsensusExecutor(1.0, sync_timeout=2.0),
                                             2: ConsensusExecutor(0.0, sync_timeout=2.0)})
    assert result.ok, result.reason


@pytest.mark.parametrize(("build", "message"), [
    (lambda: Node("a", "bc"), "node 'a' neighbors must be a list, got str"),
    (lambda: Node("a", [3]), "node 'a' neighbors: expected a Neighbor or a mapping, got int"),
    (lambda: Neighbor("a", "0.5"), "neighbor 'a': weight must be a finite number >= 0"),
    (lambda: Neighbor("a", True), "weight must be a finite number >= 0 or None, got True"),
    (lambda: Node(1.5), "node id must be a string or an integer, got 1.5"),
    (lambda: Config([{"id": "a"}]), r"schedule networks: network is missing \[.nodes.\]"),
    (lambda: Config(3), "config network must be a Network, a mapping or a list, got int"),
    (lambda: Config(Network(), extra=3), "config extra must be a mapping, got int"),
    (lambda: Network([Node("a"), "b"]), "network nodes: expected a Node or a mapping, got str"),
])
def test_wrong_shapes_are_refused_at_construction_naming_the_part(build: Any,
                                                                  message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build()


@pytest.mark.parametrize("name", ["a\x00b", "controller", "", "x/y", "x\\y", "tab\there",
                                  "n" * 129])
def test_node_names_that_cannot_name_an_actor_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="node id .*(not a valid name|is reserved)"):
        Node(name)


async def test_a_disconnected_network_is_refused_before_the_run() -> None:
    config = Config(Network.from_dict(PAIRS), {"iterations": 3})
    with pytest.raises(ConfigError, match=r"not connected: 2 groups .*\['a', 'b'\], "
                                          r"\['c', 'd'\].*allow_disconnected=True"):
        await peerflow.run(config, executors([0.0, 1.0, 2.0, 3.0]))


async def test_a_disconnected_network_runs_when_explicitly_allowed() -> None:
    config = Config(Network.from_dict(PAIRS), {"iterations": 3})
    with anyio.fail_after(10):
        result = await peerflow.run(config, executors([0.0, 1.0, 2.0, 3.0]),
                                    allow_disconnected=True)
    assert result.ok, result.reason


async def test_a_one_way_chain_is_not_strongly_connected() -> None:
    chain = Network((Node("a"), Node("b", (Neighbor("a", 0.5),)),
                     Node("c", (Neighbor("b", 0.5),))))
    with pytest.raises(ConfigError, match="not strongly connected: 3 groups"):
        await peerflow.run(Config(chain, {"iterations": 1}), executors([0.0, 1.0, 2.0]))


async def test_missing_weights_get_metropolis_hastings_weights_with_a_warning() -> None:
    nodes = executors([0.0, 3.0, 6.0])
    config = Config(Network.from_dict(UNWEIGHTED), {"iterations": 60})
    with pytest.warns(UserWarning, match=r"without a weight at \['a', 'b', 'c'\]: "
                                         "Metropolis-Hastings"), anyio.fail_after(10):
        result = await peerflow.run(config, nodes)
    assert result.ok, result.reason
    assert [node.current_value for node in nodes] == pytest.approx([3.0] * 3, abs=1e-6)
