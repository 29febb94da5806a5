"""Time-varying networks: a graph and its weights per iteration, repeating with a period.

A ``Schedule`` is a ``Network`` so that everything that looks at a run's network as a
whole keeps working: its ``nodes`` are the union graph, every link used at some point
of the period, weighted by the period's mean W (row i: the mean of node i's rows).
Connectivity checks therefore ask for joint connectivity over a period (the usual
assumption of time-varying consensus), and a network transport connects each node to
every peer it ever exchanges with. Iteration t of a run uses ``network(t)``, the
``t mod period``-th graph, and nothing else: its in-neighbours, weights and
out-neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._config import ConfigError, Neighbor, Network, Node, _items

MAX_PERIOD = 100_000
"""Graphs one schedule may hold: each is a whole network, kept for the run."""


@dataclass(frozen=True, slots=True, init=False)
class Schedule(Network):
    """A periodic sequence of networks over the same nodes, one per iteration.

    Args:
        networks: the networks of one period (Networks or ``{"nodes": [...]}`` mappings),
            all over the same node ids in the same order.

    Raises:
        ConfigError: no network, too many, or networks over different nodes.
    """

    networks: tuple[Network, ...]

    def __init__(self, networks: Sequence[Network] | Sequence[Any]) -> None:
        graphs = _items(networks, Network, "schedule networks")
        if not graphs:
            raise ConfigError("a schedule needs at least one network")
        if len(graphs) > MAX_PERIOD:
            raise ConfigError(f"a schedule of {len(graphs)} networks is too long (at most "
                              f"{MAX_PERIOD})")
        ids = graphs[0].node_ids
        for t, graph in enumerate(graphs[1:], 1):
            if graph.node_ids != ids:
                raise ConfigError(f"schedule network {t} has nodes {graph.node_ids[:5]}..., "
                                  f"network 0 {ids[:5]}...: every network of a schedule "
                                  "names the same nodes in the same order")
        object.__setattr__(self, "networks", graphs)
        object.__setattr__(self, "nodes", _union(graphs))

    @property
    def period(self) -> int:
        """How many iterations the schedule takes to repeat."""
        return len(self.networks)

    def network(self, t: int) -> Network:
        """The network of iteration ``t`` (``t mod period``)."""
        return self.networks[t % len(self.networks)]

    def validate(self) -> None:
        """Check every network of the period (``Network.validate``).

        Raises:
            ConfigError: naming the network, the node and the problem.
        """
        for t, graph in enumerate(self.networks):
            try:
                graph.validate()
            except ConfigError as exc:
                raise ConfigError(f"schedule network {t}: {exc}") from None

    def to_dict(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """The period as a list of ``{"nodes": [...]}``, as ``from_dict`` reads it."""
        return [graph.to_dict() for graph in self.networks]

    @classmethod
    def from_dict(cls, data: Any) -> Schedule:
        """Build from a list of NVFlare-shaped networks and validate it.

        Raises:
            ConfigError: the list is malformed or a network is invalid.
        """
        if not isinstance(data, list | tuple):
            raise ConfigError(f"a schedule must be a list of networks, got "
                              f"{type(data).__name__}")
        schedule = cls(data)
        schedule.validate()
        return schedule


def _union(graphs: tuple[Network, ...]) -> tuple[Node, ...]:
    """Each node's in-neighbours over the period, weighted by the mean of its rows (None
    where a graph leaves that weight to the defaults)."""
    nodes = []
    for k, node in enumerate(graphs[0].nodes):
        weights: dict[str, float | None] = {}
        for graph in graphs:
            for neighbor in graph.nodes[k].neighbors:
                total = weights.get(neighbor.id, 0.0)
                weights[neighbor.id] = (None if total is None or neighbor.weight is None
                                        else total + neighbor.weight)
        mean = tuple(Neighbor(j, None if w is None else w / len(graphs))
                     for j, w in weights.items())
        nodes.append(Node(node.id, mean))
    return tuple(nodes)
