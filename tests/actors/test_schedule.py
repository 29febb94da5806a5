"""A Schedule is a Network (its union graph with the period's mean weights) that also
holds each iteration's network; a static network's configs keep their shape."""

from __future__ import annotations

import pytest

from peerflow.actors import (
    Config,
    ConfigError,
    LocalConfig,
    LocalPhase,
    Neighbor,
    Network,
    Node,
    Schedule,
    local_configs,
    with_default_weights,
)

AB = Network([Node("a", [Neighbor("b", 0.5)]), Node("b", [Neighbor("a", 0.5)]), Node("c")])
BC = Network([Node("a"), Node("b", [Neighbor("c", 0.25)]), Node("c", [Neighbor("b", 0.25)])])


def test_the_union_holds_every_link_of_the_period_with_the_mean_weight() -> None:
    schedule = Schedule([AB, BC])
    assert schedule.period == 2 and schedule.network(3) is BC
    assert schedule.node("b").neighbors == (Neighbor("a", 0.25), Neighbor("c", 0.125))
    assert schedule.node("c").neighbors == (Neighbor("b", 0.125),)


def test_a_schedule_round_trips_through_the_config_as_a_list_of_networks() -> None:
    config = Config(Schedule([AB, BC]), {"iterations": 3})
    data = config.to_dict()
    assert data["network"] == [AB.to_dict(), BC.to_dict()]
    assert Config.from_dict(data) == config and isinstance(Config(**data).network, Schedule)


def test_each_node_is_told_its_neighbourhood_at_every_iteration_of_the_period() -> None:
    local = local_configs(Config(Schedule([AB, BC])))
    assert local["b"].phases == (LocalPhase((Neighbor("a", 0.5),), ("a",)),
                                 LocalPhase((Neighbor("c", 0.25),), ("c",)))
    assert local["a"].phases[1] == LocalPhase((), ()) and local["a"].phases[1].weight == 1.0
    assert LocalConfig.from_dict(local["b"].to_dict()) == local["b"]


def test_a_static_networks_local_config_keeps_its_dict_shape() -> None:
    data = local_configs(Config(AB))["a"].to_dict()
    assert sorted(data) == ["extra", "neighbors", "out_neighbors"]


def test_missing_weights_are_filled_in_every_network_of_the_period() -> None:
    unweighted = Network([Node("a", [Neighbor("b")]), Node("b", [Neighbor("a")]), Node("c")])
    filled = with_default_weights(Schedule([unweighted, BC]))
    assert isinstance(filled, Schedule)
    assert filled.network(0).node("a").neighbors == (Neighbor("b", 0.5),)
    assert filled.node("a").neighbors == (Neighbor("b", 0.25),)


@pytest.mark.parametrize(("build", "message"), [
    (lambda: Schedule([]), "a schedule needs at least one network"),
    (lambda: Schedule([AB, Network([Node("a"), Node("c"), Node("b")])]),
     r"schedule network 1 has nodes \['a', 'c', 'b'\]"),
    (lambda: Schedule.from_dict([AB.to_dict(), {"nodes": [{"id": "a", "neighbors": [
        {"id": "x"}]}]}]), "schedule networks: node 'a' names unknown neighbor 'x'"),
    (lambda: Schedule.from_dict({"nodes": []}), "a schedule must be a list of networks"),
])
def test_bad_schedules_are_refused_naming_the_network(build, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build()
