"""Run configuration with NVFlare's names and dict shapes (``nvflare.app_opt.p2p.types``).

A node's ``neighbors`` are its *in*-neighbours: the nodes whose values it mixes,
each with the weight it gives them. Its self weight is ``1 - sum(weights)``. The
out-neighbours (whom a node sends to) are derived from the whole network, so
directed graphs work. Node ids are opaque strings (NVFlare's integer ids become
strings) and are never parsed; they name actors, so they may not be the
controller's name, hold a path separator or a control character.

NVFlare's dataclasses take dicts and integer ids; these convert them at construction
(``Config(**d)``, ``Node(1, [{"id": 2}])``) and refuse anything else there, not in a run.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

WEIGHT_TOLERANCE = 1e-9
CONTROLLER_NAME = "controller"
MAX_ID_LENGTH = 128
_SEPARATORS = frozenset("/\\")

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration is malformed; the message names the offending part."""


@dataclass(frozen=True, slots=True)
class Neighbor:
    """An in-neighbour of a node and the weight the node gives its value."""

    id: str
    weight: float | None = None

    def __post_init__(self) -> None:
        # A str id is checked where it matters (validate: it must name a node), so the
        # common case costs one type check per neighbour of a large network.
        if type(self.id) is not str:
            object.__setattr__(self, "id", _node_id(self.id))
        object.__setattr__(self, "weight", _weight(self.weight, self.id))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "weight": self.weight}

    @classmethod
    def from_dict(cls, data: Any) -> Neighbor:
        """Build from ``{"id": ..., "weight": ...}``.

        Raises:
            ConfigError: the mapping has no id, unknown keys, or a bad weight.
        """
        fields = _mapping(data, "neighbor", required={"id"}, optional={"weight"})
        return cls(id=fields["id"], weight=fields.get("weight"))


@dataclass(frozen=True, slots=True)
class Node:
    """A node of the network and its in-neighbours."""

    id: str
    neighbors: tuple[Neighbor, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", _node_id(self.id))
        object.__setattr__(self, "neighbors", _items(self.neighbors, Neighbor,
                                                       f"node {self.id!r} neighbors"))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "neighbors": [n.to_dict() for n in self.neighbors]}

    @classmethod
    def from_dict(cls, data: Any) -> Node:
        """Build from ``{"id": ..., "neighbors": [...]}``.

        Raises:
            ConfigError: the mapping is malformed.
        """
        fields = _mapping(data, "node", required={"id"}, optional={"neighbors"})
        return cls(fields["id"], fields.get("neighbors", ()))


@dataclass(frozen=True, slots=True)
class Network:
    """The nodes of a run and who mixes whose values."""

    nodes: tuple[Node, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", _items(self.nodes, Node, "network nodes"))

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
        network = cls(fields["nodes"])
        network.validate()
        return network


@dataclass(frozen=True, slots=True)
class Config:
    """A whole run: the network and algorithm-specific parameters (``extra``).

    ``network`` may be a ``Schedule`` (a time-varying network); as data, a list of
    networks is one.
    """

    network: Network
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.network, Mapping | list | tuple):
            object.__setattr__(self, "network", network_from_data(self.network))
        elif not isinstance(self.network, Network):
            raise ConfigError(f"config network must be a Network, a mapping or a list, got "
                              f"{type(self.network).__name__}")
        object.__setattr__(self, "extra", _extra(self.extra, "config extra"))

    def to_dict(self) -> dict[str, Any]:
        return {"network": self.network.to_dict(), "extra": dict(self.extra)}

    @classmethod
    def from_dict(cls, data: Any) -> Config:
        """Build from NVFlare's ``{"network": {...}, "extra": {...}}`` shape.

        Raises:
            ConfigError: the mapping is malformed or the network is invalid.
        """
        fields = _mapping(data, "config", required={"network"}, optional={"extra"})
        return cls(network_from_data(fields["network"]), fields.get("extra", {}))


def network_from_data(data: Any) -> Network:
    """A static network from ``{"nodes": [...]}``, or a time-varying one (a ``Schedule``)
    from a list of them, one per iteration of its period.

    Raises:
        ConfigError: the data is malformed or a network is invalid.
    """
    if isinstance(data, list | tuple):
        from ._schedule import Schedule  # a Schedule is a Network: it imports this module

        return Schedule.from_dict(data)
    return Network.from_dict(data)


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
    total = sum(n.weight or 0.0 for n in node.neighbors)
    if total > 1 + WEIGHT_TOLERANCE:
        raise ConfigError(f"node {node.id!r}: neighbor weights sum to {total:.6g}, above 1 "
                          "(the self weight 1 - sum would be negative)")


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


def _items(values: Any, kind: type[T], what: str,
           convert: Callable[[Any], T] | None = None) -> tuple[T, ...]:
    """``values`` as a tuple of ``kind``, converting the others (mappings by ``from_dict``)."""
    if not isinstance(values, list | tuple):
        raise ConfigError(f"{what} must be a list, got {type(values).__name__}: {values!r:.80}")
    try:
        return tuple(v if isinstance(v, kind) else _convert(v, kind, convert) for v in values)
    except ConfigError as exc:
        raise ConfigError(f"{what}: {exc}") from None


def _convert(value: Any, kind: type[T], convert: Callable[[Any], T] | None) -> T:
    if convert is not None:
        return convert(value)
    if isinstance(value, Mapping):
        return kind.from_dict(value)  # type: ignore[attr-defined, no-any-return]
    raise ConfigError(f"expected a {kind.__name__} or a mapping, got {type(value).__name__}: "
                      f"{value!r:.80}")


def _extra(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{what} must be a mapping, got {type(value).__name__}")
    return dict(value)


def _node_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConfigError(f"node id must be a string or an integer, got {value!r:.80}")
    text = str(value)
    printable = text.isprintable() and _SEPARATORS.isdisjoint(text)
    if not (printable and 0 < len(text) <= MAX_ID_LENGTH):
        raise ConfigError(f"node id {text!r:.80} is not a valid name: expected 1 to "
                          f"{MAX_ID_LENGTH} printable characters, no '/' or '\\'")
    if text == CONTROLLER_NAME:
        raise ConfigError(f"node id {text!r} is reserved: it is the controller's name")
    return text


def _weight(value: Any, neighbor: str) -> float | None:
    if type(value) is float and 0.0 <= value <= sys.float_info.max:  # the common case, fast
        return value
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and value >= 0):
        raise ConfigError(f"neighbor {neighbor!r}: weight must be a finite number >= 0 or None, "
                          f"got {value!r:.80}")
    return float(value)
