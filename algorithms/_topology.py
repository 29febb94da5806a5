"""Topologies, mixing weights and their spectral properties.

Builders return networkx graphs labelled ``f"{prefix}{i + 1}"`` (NVFlare's site
names) in node order; random draws take integer seeds derived with numpy's
``SeedSequence``, so the same seed gives the same graph in every process.
A ``Network`` is the bridge to the runtime: row i of the mixing matrix W holds
node i's in-weights, and its self weight ``1 - sum`` sits on the diagonal
(``_mixing``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Integral, Real
from typing import Literal

import networkx as nx
import numpy as np

from peerflow.actors import Neighbor, Network, Node

WeightScheme = Literal["metropolis-hastings", "uniform"]
TopologyBuilder = Callable[[int, int], nx.Graph]

MAX_DRAWS = 100
_FAST_GNP_BELOW = 0.1  # fast_gnp_random_graph wins for sparse graphs


def ring(n: int, prefix: str = "site-") -> nx.Graph:
    """Cycle on n nodes (n=1: no edge, n=2: one edge).

    Raises:
        ValueError: n is not an integer >= 1.
    """
    return _labelled(_cycle(n, nx.Graph), prefix)


def path(n: int, prefix: str = "site-") -> nx.Graph:
    """Path site-1 - site-2 - ... - site-n.

    Raises:
        ValueError: n is not an integer >= 1.
    """
    return _labelled(nx.path_graph(_count("n", n)), prefix)


def star(n: int, prefix: str = "site-") -> nx.Graph:
    """Star of n nodes with site-1 at the centre.

    Raises:
        ValueError: n is not an integer >= 1.
    """
    return _labelled(nx.star_graph(_count("n", n) - 1), prefix)


def grid(rows: int, cols: int, prefix: str = "site-") -> nx.Graph:
    """2-D lattice numbered row by row.

    Raises:
        ValueError: rows or cols is not an integer >= 1.
    """
    return _labelled(nx.grid_2d_graph(_count("rows", rows), _count("cols", cols)), prefix)


def complete(n: int, prefix: str = "site-") -> nx.Graph:
    """Complete graph on n nodes.

    Raises:
        ValueError: n is not an integer >= 1.
    """
    return _labelled(nx.complete_graph(_count("n", n)), prefix)


def directed_ring(n: int, prefix: str = "site-") -> nx.DiGraph:
    """Directed cycle: node i receives from node i-1 only.

    Raises:
        ValueError: n is not an integer >= 1.
    """
    return _labelled(_cycle(n, nx.DiGraph), prefix)


def exponential(n: int, prefix: str = "site-") -> nx.DiGraph:
    """Static exponential graph (Ying et al. 2021): node i hears from i - 2^k, for
    k = 0 ... ceil(log2 n) - 1; with uniform (or Metropolis-Hastings) weights, W is
    doubly stochastic (every node has the same in- and out-degree).

    Raises:
        ValueError: n is not an integer >= 1.
    """
    n = _count("n", n)
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n))
    hops = {2**k % n for k in range(math.ceil(math.log2(n)))} - {0} if n > 1 else set()
    graph.add_edges_from(((i - hop) % n, i) for i in range(n) for hop in hops)
    return _labelled(graph, prefix)


def random_connected(
    n: int, p: float | None = None, seed: int = 0, mean_degree: float = 4.0, prefix: str = "site-"
) -> nx.Graph:
    """Connected Erdős–Rényi graph G(n, p), redrawn from derived seeds until connected.

    p defaults to ``mean_degree / (n - 1)``, with the mean degree raised to ln(n)
    when below it: under that threshold a large draw is almost never connected.

    Raises:
        ValueError: an argument is out of range, or no connected draw in MAX_DRAWS.
    """
    return _draw_connected(n, p, seed, mean_degree, prefix, directed=False)


def random_directed(
    n: int, p: float | None = None, seed: int = 0, mean_degree: float = 4.0, prefix: str = "site-"
) -> nx.DiGraph:
    """Strongly connected directed G(n, p), redrawn from derived seeds until it is.

    p defaults as in `random_connected`, with the floor ln(2n) on the mean degree.

    Raises:
        ValueError: an argument is out of range, or no strongly connected draw.
    """
    return _draw_connected(n, p, seed, mean_degree, prefix, directed=True)


def grid_shape(n: int) -> tuple[int, int]:
    """Most square (rows, cols) with rows * cols == n and rows <= cols (1 x n if n is prime).

    Raises:
        ValueError: n is not an integer >= 1.
    """
    n = _count("n", n)
    rows = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    return rows, n // rows


TOPOLOGIES: dict[str, TopologyBuilder] = {
    "ring": lambda n, seed: ring(n),
    "path": lambda n, seed: path(n),
    "star": lambda n, seed: star(n),
    "grid": lambda n, seed: grid(*grid_shape(n)),
    "complete": lambda n, seed: complete(n),
    "random": lambda n, seed: random_connected(n, seed=seed),
    "directed-ring": lambda n, seed: directed_ring(n),
    "exponential": lambda n, seed: exponential(n),
    "random-directed": lambda n, seed: random_directed(n, seed=seed),
}


def metropolis_hastings(graph: nx.Graph) -> Network:
    """Network with Metropolis-Hastings weights, in the graph's node order.

    Undirected: w_ij = 1 / (1 + max(d_i, d_j)), so W is symmetric and doubly
    stochastic. Directed: w_ij = 1 / (1 + indeg_i) over in-neighbours j, so W is
    row stochastic.

    Raises:
        ValueError: the graph is empty, a multigraph, or has self-loops.
    """
    _check_graph(graph)
    if graph.is_directed():
        indegree = dict(graph.in_degree)
        return _network(graph, lambda i, j: 1.0 / (1 + indegree[i]))
    degree = dict(graph.degree)
    return _network(graph, lambda i, j: 1.0 / (1 + max(degree[i], degree[j])))


def network_from_graph(graph: nx.Graph, weights: WeightScheme = "metropolis-hastings") -> Network:
    """Network of a graph with ``metropolis-hastings`` or ``uniform`` weights.

    ``uniform`` splits each node's row equally over itself and its in-neighbours:
    w_ij = 1 / (1 + indeg_i); W is row stochastic (doubly so on regular graphs).

    Raises:
        ValueError: unknown weight scheme, or a graph as `metropolis_hastings` rejects.
    """
    if weights == "metropolis-hastings":
        return metropolis_hastings(graph)
    if weights != "uniform":
        raise ValueError(f"weights must be 'metropolis-hastings' or 'uniform', got {weights!r}")
    _check_graph(graph)
    degree = dict(graph.in_degree if graph.is_directed() else graph.degree)
    return _network(graph, lambda i, j: 1.0 / (1 + degree[i]))


def graph_of(network: Network) -> nx.DiGraph:
    """Directed graph with an edge j -> i when j is an in-neighbour of i."""
    graph = nx.DiGraph()
    graph.add_nodes_from(network.node_ids)
    for node in network.nodes:
        for neighbor in node.neighbors:
            attrs = {} if neighbor.weight is None else {"weight": neighbor.weight}
            graph.add_edge(neighbor.id, node.id, **attrs)
    return graph


def _draw_connected(
    n: int, p: float | None, seed: int, mean_degree: float, prefix: str, *, directed: bool
) -> nx.Graph:
    n, seed = _count("n", n), _count("seed", seed, minimum=0)
    p = _default_p(n, mean_degree, directed) if p is None else _probability("p", p)
    generate = nx.fast_gnp_random_graph if p < _FAST_GNP_BELOW else nx.gnp_random_graph
    connected = nx.is_strongly_connected if directed else nx.is_connected
    for draw in range(MAX_DRAWS):
        derived = int(np.random.SeedSequence([seed, draw]).generate_state(1)[0])
        graph = generate(n, p, seed=derived, directed=directed)
        if connected(graph):
            return _labelled(graph, prefix)
    kind = "strongly connected" if directed else "connected"
    raise ValueError(f"no {kind} G(n={n}, p={p:.4g}) in {MAX_DRAWS} draws from seed={seed}")


def _default_p(n: int, mean_degree: float, directed: bool) -> float:
    if not isinstance(mean_degree, Real) or not mean_degree >= 0:
        raise ValueError(f"mean_degree must be a number >= 0, got {mean_degree!r}")
    if n == 1:
        return 1.0
    floor = math.log(2 * n if directed else n)
    return min(1.0, max(float(mean_degree), floor) / (n - 1))


def _network(graph: nx.Graph, weight: Callable[[object, object], float]) -> Network:
    order = {v: k for k, v in enumerate(graph)}.__getitem__
    into = graph.predecessors if graph.is_directed() else graph.neighbors
    nodes = (
        Node(str(i), tuple(Neighbor(str(j), weight(i, j)) for j in sorted(into(i), key=order)))
        for i in graph
    )
    return Network(tuple(nodes))


def _cycle(n: int, kind: type[nx.Graph]) -> nx.Graph:
    graph = nx.cycle_graph(_count("n", n), create_using=kind)
    graph.remove_edges_from(list(nx.selfloop_edges(graph)))  # n=1: cycle_graph adds a loop
    return graph


def _labelled(graph: nx.Graph, prefix: str) -> nx.Graph:
    return nx.relabel_nodes(graph, {v: f"{prefix}{k + 1}" for k, v in enumerate(graph)})


def _check_graph(graph: nx.Graph) -> None:
    if graph.number_of_nodes() == 0:
        raise ValueError("graph has no nodes")
    if graph.is_multigraph():
        raise ValueError("graph is a multigraph; mixing weights need a simple graph")
    loops = [u for u, _ in nx.selfloop_edges(graph)]
    if loops:
        raise ValueError(f"graph has self-loops at {loops[:5]}; self weights are implicit")


def _count(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _probability(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)
