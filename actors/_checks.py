"""What a run's network must pass before the run starts, and the weights it may omit.

On a graph that is not strongly connected, some node never hears, even through
others, of another node's value: averaging cannot reach consensus, and a run
would "complete" with a spread that never shrinks. ``run`` refuses such a
network unless told ``allow_disconnected``. A neighbour without a weight
(NVFlare's ``Neighbor`` allows ``weight=None``) gets its Metropolis-Hastings
weight, and ``run`` warns that it did.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

from ._config import Config, ConfigError, Neighbor, Network, Node
from ._schedule import Schedule

SHOWN = 5
"""How many names or groups an error message lists before it counts the rest."""


def unweighted_nodes(network: Network) -> list[str]:
    """The nodes that give some in-neighbour no weight (``weight=None``)."""
    return [node.id for node in network.nodes
            if any(neighbor.weight is None for neighbor in node.neighbors)]


def is_symmetric(network: Network) -> bool:
    """True if j mixes i's value whenever i mixes j's (an undirected graph)."""
    edges = {(node.id, n.id) for node in network.nodes for n in node.neighbors}
    return all((j, i) in edges for i, j in edges)


def with_default_weights(network: Network) -> Network:
    """``network`` with every missing weight set to its Metropolis-Hastings weight.

    With d the in-degree: on a symmetric network w_ij = 1 / (1 + max(d_i, d_j)),
    so W is symmetric and doubly stochastic; on any other w_ij = 1 / (1 + d_i), so
    W is row stochastic. Weights that are given stay. A ``Schedule`` gets each of its
    networks' weights.

    Raises:
        ConfigError: the network is invalid, before or after the weights are set.
    """
    network.validate()
    if not unweighted_nodes(network):
        return network
    if isinstance(network, Schedule):
        return Schedule(tuple(with_default_weights(graph) for graph in network.networks))
    degree = {node.id: len(node.neighbors) for node in network.nodes}
    weight: Callable[[str, str], float] = (
        (lambda i, j: 1.0 / (1 + max(degree[i], degree[j]))) if is_symmetric(network)
        else (lambda i, j: 1.0 / (1 + degree[i])))
    filled = Network(tuple(
        Node(node.id, tuple(n if n.weight is not None else Neighbor(n.id, weight(node.id, n.id))
                            for n in node.neighbors))
        for node in network.nodes))
    filled.validate()
    return filled


def check_connected(network: Network) -> None:
    """Refuse a network on which some node's value never reaches some other node.

    Raises:
        ConfigError: naming the groups of nodes that cannot reach each other.
    """
    inbound = {node.id: [n.id for n in node.neighbors] for node in network.nodes}
    first = network.node_ids[:1]
    if _reached(first, inbound) == len(inbound) == _reached(first, network.out_neighbors()):
        return
    import networkx as nx  # here, not at the top: node processes never pay its import

    graph = nx.DiGraph()
    graph.add_nodes_from(network.node_ids)
    graph.add_edges_from((n.id, node.id) for node in network.nodes for n in node.neighbors)
    order = {node_id: k for k, node_id in enumerate(network.node_ids)}
    groups = sorted((sorted(group, key=order.__getitem__)
                     for group in nx.strongly_connected_components(graph)), key=len, reverse=True)
    kind = "connected" if is_symmetric(network) else "strongly connected"
    raise ConfigError(f"the network is not {kind}: {len(groups)} groups of nodes cannot reach "
                      f"each other: {_listing([_listing(g) for g in groups], quote=False)}")


def prepare_config(config: Config, *, allow_disconnected: bool = False) -> Config:
    """The config a run uses: validated, connected unless allowed, every weight set.

    Warns (``UserWarning``) when it fills in missing weights, naming the nodes.

    Raises:
        ConfigError: the network is invalid, or not connected and not allowed to be.
    """
    missing = unweighted_nodes(config.network)
    network = with_default_weights(config.network)
    if missing:
        warnings.warn(f"neighbours without a weight at {_listing(missing)}: "
                      "Metropolis-Hastings weights filled in", UserWarning, stacklevel=2)
    if not allow_disconnected:
        try:
            check_connected(network)
        except ConfigError as exc:
            raise ConfigError(f"{exc}; pass allow_disconnected=True to run it anyway") from None
    return config if network is config.network else Config(network, config.extra)


def _reached(start: list[str], edges: dict[str, list[str]]) -> int:
    """How many nodes a walk along ``edges`` from ``start`` reaches (itself included).

    A plain walk over the adjacency lists: building a networkx graph of a large
    network costs ten times more, and most networks pass.
    """
    seen, stack = set(start), list(start)
    while stack:
        for node in edges[stack.pop()]:
            if node not in seen:
                seen.add(node)
                stack.append(node)
    return len(seen)


def _listing(items: Sequence[str], *, quote: bool = True) -> str:
    shown = [repr(item) if quote else item for item in items[:SHOWN]]
    more = f", ... ({len(items)} in all)" if len(items) > SHOWN else ""
    return f"[{', '.join(shown)}{more}]"
