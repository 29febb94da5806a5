"""What one node is told about the run (its ``LocalConfig``), split from the whole config.

A node of a time-varying network (``Schedule``) also gets its ``phases``: for each
iteration of the period, its in-neighbours with their weights and its out-neighbours.
Its ``neighbors`` and ``out_neighbors`` are then those of the union graph. A static
network's local config has no phases and the same dict shape as always.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._config import Config, Neighbor, Network, _extra, _items, _mapping, _node_id
from ._schedule import Schedule


@dataclass(frozen=True, slots=True)
class LocalPhase:
    """A node's neighbourhood at one iteration of a schedule's period."""

    neighbors: tuple[Neighbor, ...] = ()
    out_neighbors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "neighbors", _items(self.neighbors, Neighbor,
                                                       "phase neighbors"))
        ids = _items(self.out_neighbors, str, "phase out_neighbors", convert=_node_id)
        object.__setattr__(self, "out_neighbors", ids)

    @property
    def weight(self) -> float:
        """The self weight: 1 minus the sum of the in-neighbours' weights."""
        return 1.0 - sum(n.weight or 0.0 for n in self.neighbors)

    def to_dict(self) -> dict[str, Any]:
        return {"neighbors": [n.to_dict() for n in self.neighbors],
                "out_neighbors": list(self.out_neighbors)}

    @classmethod
    def from_dict(cls, data: Any) -> LocalPhase:
        """Build from ``{"neighbors": [...], "out_neighbors": [...]}``.

        Raises:
            ConfigError: the mapping is malformed.
        """
        fields = _mapping(data, "local phase", required={"neighbors", "out_neighbors"})
        return cls(fields["neighbors"], fields["out_neighbors"])


@dataclass(frozen=True, slots=True)
class LocalConfig:
    """What one node is told: its in-neighbours, out-neighbours and ``extra``, and on a
    time-varying network its neighbourhood at each iteration of the period (``phases``)."""

    neighbors: tuple[Neighbor, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)
    out_neighbors: tuple[str, ...] = ()
    phases: tuple[LocalPhase, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "neighbors", _items(self.neighbors, Neighbor,
                                                       "local config neighbors"))
        object.__setattr__(self, "extra", _extra(self.extra, "local config extra"))
        ids = _items(self.out_neighbors, str, "out_neighbors", convert=_node_id)
        object.__setattr__(self, "out_neighbors", ids)
        object.__setattr__(self, "phases", _items(self.phases, LocalPhase, "phases"))

    def to_dict(self) -> dict[str, Any]:
        data = {"neighbors": [n.to_dict() for n in self.neighbors], "extra": dict(self.extra),
                "out_neighbors": list(self.out_neighbors)}
        if self.phases:
            data["phases"] = [phase.to_dict() for phase in self.phases]
        return data

    @classmethod
    def from_dict(cls, data: Any) -> LocalConfig:
        """Build from ``{"neighbors": [...], "extra": {...}, "out_neighbors": [...]}``
        (and ``"phases": [...]`` on a time-varying network).

        Raises:
            ConfigError: the mapping is malformed.
        """
        fields = _mapping(data, "local config", required={"neighbors"},
                          optional={"extra", "out_neighbors", "phases"})
        return cls(fields["neighbors"], fields.get("extra") or {}, fields.get("out_neighbors", ()),
                   fields.get("phases", ()))


def local_configs(config: Config) -> dict[str, LocalConfig]:
    """Split a run's config into each node's local config."""
    network = config.network
    out = network.out_neighbors()
    phases = _phases(network) if isinstance(network, Schedule) else {}
    return {node.id: LocalConfig(node.neighbors, config.extra, tuple(out[node.id]),
                                 phases.get(node.id, ()))
            for node in network.nodes}


def _phases(schedule: Schedule) -> dict[str, tuple[LocalPhase, ...]]:
    per_node: dict[str, list[LocalPhase]] = {node_id: [] for node_id in schedule.node_ids}
    for graph in schedule.networks:
        for node_id, phase in _neighbourhoods(graph).items():
            per_node[node_id].append(phase)
    return {node_id: tuple(phases) for node_id, phases in per_node.items()}


def _neighbourhoods(graph: Network) -> dict[str, LocalPhase]:
    out = graph.out_neighbors()
    return {node.id: LocalPhase(node.neighbors, tuple(out[node.id])) for node in graph.nodes}
