"""Run configuration with NVFlare's names and dict shapes (``nvflare.app_opt.p2p.types``).

A node's ``neighbors`` are its *in*-neighbours: the nodes whose values it mixes,
each with the weight it gives them. Its self weight is ``1 - sum(weights)``. The
out-neighbours (whom a node sends to) are derived from the whole network, so
directed graphs work. Node ids are opaque strings or ints and are never parsed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

WEIGHT_TOLERANCE = 1e-9


class ConfigError(ValueError):
    """A configuration is malformed; the message names the offending part."""


@dataclass(frozen=True, slots=True)
class Neighbor:
    """An in-neighbour of a node and the weight the node gives its value."""

    id: str
    weight: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "weight": self.weight}

    @classmethod
    def from_dict(cls, data: Any) -> Neighbor:
        """Build from ``{"id": ..., "weight": ...}``.

        Raises:
            ConfigError: the mapping has no id, unknown keys, or a non-numeric weight.
        """
        fields = _mapping(data, "neighbor", required={"id"}, optional={"weight"})
        weight = fields.get("weight")
        if weight is not None and not _is_number(weight):
            raise ConfigError(f"neighbor {fields['id']!r}: weight must be a number, got {weight!r}")
        return cls(id=_node_id(fields["id"]), weight=None if weight is None else float(weight))


@dataclass(frozen=True, slots=True)
class Node:
    """A node of the network and its in-neighbours."""

    id: str
    neighbors: tuple[Neighbor, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "neighbors", tuple(self.neighbors))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "neighbors": [n.to_dict() for n in self.neighbors]}

    @classmethod
    def from_dict(cls, data: Any) -> Node:
        """Build from ``{"id": ..., "neighbors": [...]}``.

        Raises:
            ConfigError: the mapping is malformed.
        """
        fields = _mapping(data, "node", required={"id"}, optional={"neighbors"})
        neighbors = _list(fields.get("neighbors", []), f"node {fields['id']!r} neighbors")
        return cls(_node_id(fields["id"]), tuple(Neighbor.from_dict(n) for n in neighbors))


@dataclass(frozen=True, slots=True)
class Network:
    """The nodes of a run and who mixes whose values."""

    nodes: tuple[Node, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(self.nodes))

    @property
    def node_ids(self) -> list[str]:
        return [node.id for node in self.nodes]

    def node(self, node_id: str) -> Node:
        """Return the node called ``node_id``.

        Raises:
            KeyError: no such node.
        """
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def out_neighbors(self) -> dict[str, list[str]]:
        """Map each node to the nodes that mix its value (whom it must send to)."""
        out: dict[str, list[str]] = {node.id: [] for node in self.nodes}
        for node in self.nodes:
            for neighbor in node.neighbors:
                out[neighbor.id].append(node.id)
        return out

    def validate(self) -> None:
        """Check ids are unique and known, and weights form a valid mixing row.

        Raises:
            ConfigError: naming the node and the problem.
        """
        if not self.nodes:
            raise ConfigError("network has no nodes")
        ids = self.node_ids
        duplicates = sorted(i for i, count in Counter(ids).items() if count > 1)
        if duplicates:
            raise ConfigError(f"network names nodes more than once: {duplicates}")
        known = set(ids)
        for node in self.nodes:
            _validate_row(node, known)

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": [node.to_dict() for node in self.nodes]}

    @classmethod
    def from_dict(cls, data: Any) -> Network:
        """Build from NVFlare's ``{"nodes": [...]}`` shape and validate it.

        Raises:
            ConfigError: the mapping is malformed or the network is invalid.
        """
        fields = _mapping(data, "network", required={"nodes"})
        network = cls(tuple(Node.from_dict(n) for n in _list(fields["nodes"], "network nodes")))
        network.validate()
        return network


@dataclass(frozen=True, slots=True)
class Config:
    """A whole run: the network and algorithm-specific parameters (``extra``)."""

    network: Network
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"network": self.network.to_dict(), "extra": dict(self.extra)}

    @classmethod
    def from_dict(cls, data: Any) -> Config:
        """Build from NVFlare's ``{"network": {...}, "extra": {...}}`` shape.

        Raises:
            ConfigError: the mapping is malformed or the network is invalid.
        """
        fields = _mapping(data, "config", required={"network"}, optional={"extra"})
        extra = fields.get("extra", {})
        if not isinstance(extra, Mapping):
            raise ConfigError(f"config extra must be a mapping, got {type(extra).__name__}")
        return cls(Network.from_dict(fields["network"]), dict(extra))


@dataclass(frozen=True, slots=True)
class LocalConfig:
    """What one node is told: its in-neighbours, out-neighbours and ``extra``."""

    neighbors: tuple[Neighbor, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)
    out_neighbors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "neighbors", tuple(self.neighbors))
        object.__setattr__(self, "out_neighbors", tuple(self.out_neighbors))

    def to_dict(self) -> dict[str, Any]:
        return {
            "neighbors": [n.to_dict() for n in self.neighbors],
            "extra": dict(self.extra),
            "out_neighbors": list(self.out_neighbors),
        }

    @classmethod
    def from_dict(cls, data: Any) -> LocalConfig:
        """Build from ``{"neighbors": [...], "extra": {...}, "out_neighbors": [...]}``.

        Raises:
            ConfigError: the mapping is malformed.
        """
        fields = _mapping(
            data, "local config", required={"neighbors"}, optional={"extra", "out_neighbors"}
        )
        neighbors = tuple(Neighbor.from_dict(n) for n in _list(fields["neighbors"], "neighbors"))
        out = tuple(_node_id(i) for i in _list(fields.get("out_neighbors", []), "out_neighbors"))
        return cls(neighbors, dict(fields.get("extra") or {}), out)


def local_configs(config: Config) -> dict[str, LocalConfig]:
    """Split a run's config into each node's local config."""
    out = config.network.out_neighbors()
    return {
        node.id: LocalConfig(node.neighbors, config.extra, tuple(out[node.id]))
        for node in config.network.nodes
    }


def _validate_row(node: Node, known: set[str]) -> None:
    seen: set[str] = set()
    for neighbor in node.neighbors:
        if neighbor.id not in known:
            raise ConfigError(f"node {node.id!r} names unknown neighbor {neighbor.id!r}")
        if neighbor.id == node.id:
            raise ConfigError(f"node {node.id!r} lists itself as a neighbor")
        if neighbor.id in seen:
            raise ConfigError(f"node {node.id!r} lists neighbor {neighbor.id!r} twice")
        seen.add(neighbor.id)
        if neighbor.weight is not None and (
            not math.isfinite(neighbor.weight) or neighbor.weight < 0
        ):
            raise ConfigError(
                f"node {node.id!r}: weight of neighbor {neighbor.id!r} must be a finite number "
                f">= 0, got {neighbor.weight}"
            )
    total = sum(n.weight or 0.0 for n in node.neighbors)
    if total > 1 + WEIGHT_TOLERANCE:
        raise ConfigError(
            f"node {node.id!r}: neighbor weights sum to {total:.6g}, above 1 "
            "(the self weight 1 - sum would be negative)"
        )


def _mapping(
    data: Any, what: str, *, required: set[str], optional: frozenset[str] | set[str] = frozenset()
) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{what} must be a mapping, got {type(data).__name__}: {data!r:.80}")
    missing = sorted(required - data.keys())
    if missing:
        raise ConfigError(f"{what} is missing {missing}: {dict(data)!r:.120}")
    unknown = sorted(str(k) for k in data.keys() - required - set(optional))
    if unknown:
        raise ConfigError(f"{what} has unknown keys {unknown}")
    return data


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{what} must be a list, got {type(value).__name__}")
    return list(value)


def _node_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConfigError(f"node id must be a string or an integer, got {value!r}")
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
