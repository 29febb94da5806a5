from __future__ import annotations

import os
import subprocess
import sys

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerflow.actors import Neighbor, Network, Node
from peerflow.algorithms import (
    TOPOLOGIES,
    complete,
    consensus_rate,
    describe,
    directed_ring,
    graph_of,
    grid,
    grid_shape,
    is_column_stochastic,
    is_doubly_stochastic,
    is_row_stochastic,
    metropolis_hastings,
    mixing_matrix,
    network_from_graph,
    path,
    random_connected,
    random_directed,
    ring,
    second_largest_eigenvalue_modulus,
    spectral_gap,
    star,
)

UNDIRECTED = [ring(10), path(8), star(7), grid(3, 4), complete(6), random_connected(20, seed=3)]
DIRECTED = [directed_ring(6), random_directed(12, seed=1), random_directed(20, p=0.12, seed=2)]


def sites(n: int, prefix: str = "site-") -> list[str]:
    return [f"{prefix}{i}" for i in range(1, n + 1)]


def edge_set(graph: nx.Graph) -> set[frozenset[str]]:
    return {frozenset(edge) for edge in graph.edges}


def mh_matrix(graph: nx.Graph) -> np.ndarray:
    return mixing_matrix(metropolis_hastings(graph))[0]


@pytest.mark.parametrize(
    ("graph", "nodes", "edges"),
    [
        (ring(1), 1, 0),
        (ring(2), 2, 1),
        (ring(5), 5, 5),
        (path(1), 1, 0),
        (path(5), 5, 4),
        (star(1), 1, 0),
        (star(6), 6, 5),
        (grid(1, 1), 1, 0),
        (grid(3, 4), 12, 17),
        (grid(1, 5), 5, 4),
        (complete(6), 6, 15),
        (directed_ring(1), 1, 0),
        (directed_ring(2), 2, 2),
        (directed_ring(5), 5, 5),
    ],
)
def test_a_builder_makes_the_expected_nodes_and_edges(graph, nodes, edges):
    assert graph.number_of_nodes() == nodes
    assert graph.number_of_edges() == edges
    assert nx.number_of_selfloops(graph) == 0


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
@pytest.mark.parametrize("n", [1, 2, 7, 12])
def test_every_named_topology_is_connected_and_labels_sites_one_to_n(name, n):
    graph = TOPOLOGIES[name](n, 0)
    assert list(graph) == sites(n)
    connected = nx.is_strongly_connected if graph.is_directed() else nx.is_connected
    assert connected(graph)


def test_builders_label_nodes_with_the_given_prefix():
    assert list(ring(3, prefix="peer")) == sites(3, "peer")
    assert list(grid(2, 2, prefix="n")) == sites(4, "n")
    assert list(random_connected(4, prefix="x-")) == sites(4, "x-")


def test_the_named_topologies_are_the_documented_ones():
    names = "ring path star grid complete random directed-ring random-directed exponential"
    assert set(TOPOLOGIES) == set(names.split())


def test_star_has_site_one_at_the_centre():
    assert dict(star(5).degree)["site-1"] == 4


def test_grid_is_numbered_row_by_row():
    graph = grid(2, 3)
    assert graph.has_edge("site-1", "site-2") and graph.has_edge("site-1", "site-4")
    assert not graph.has_edge("site-3", "site-4")


@pytest.mark.parametrize(("n", "shape"), [(1, (1, 1)), (12, (3, 4)), (13, (1, 13)), (16, (4, 4))])
def test_grid_shape_is_the_most_square_factorisation(n, shape):
    assert grid_shape(n) == shape
    assert TOPOLOGIES["grid"](n, 0).number_of_edges() == grid(*shape).number_of_edges()


def test_directed_ring_node_receives_from_the_previous_node_only():
    graph = directed_ring(4)
    senders = {node: list(graph.predecessors(node)) for node in graph}
    assert senders == {
        "site-1": ["site-4"],
        "site-2": ["site-1"],
        "site-3": ["site-2"],
        "site-4": ["site-3"],
    }


def test_random_connected_is_reproducible_and_differs_between_seeds():
    assert edge_set(random_connected(30, seed=7)) == edge_set(random_connected(30, seed=7))
    assert edge_set(random_connected(30, seed=7)) != edge_set(random_connected(30, seed=8))


def test_random_connected_is_the_same_graph_in_another_process():
    code = (
        "from peerflow.algorithms._topology import random_connected, random_directed;"
        "print(sorted(random_connected(40, seed=5).edges));"
        "print(sorted(random_directed(15, seed=5).edges))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [
        str(sorted(random_connected(40, seed=5).edges)),
        str(sorted(random_directed(15, seed=5).edges)),
    ]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 60), seed=st.integers(0, 2**32))
def test_random_connected_is_always_connected_and_reproducible(n, seed):
    graph = random_connected(n, seed=seed)
    assert list(graph) == sites(n)
    assert nx.is_connected(graph)
    assert edge_set(graph) == edge_set(random_connected(n, seed=seed))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 40), seed=st.integers(0, 2**32))
def test_random_directed_is_always_strongly_connected(n, seed):
    graph = random_directed(n, seed=seed)
    assert graph.is_directed() and nx.is_strongly_connected(graph)


def test_random_connected_honours_an_explicit_p():
    assert random_connected(6, p=1.0).number_of_edges() == 15
    with pytest.raises(ValueError, match=r"no connected G\(n=6, p=0\)"):
        random_connected(6, p=0.0)


def test_random_connected_stays_connected_for_many_nodes():
    assert nx.is_connected(random_connected(3000, seed=1))


@pytest.mark.parametrize("graph", UNDIRECTED)
def test_metropolis_hastings_on_an_undirected_graph_is_symmetric_and_doubly_stochastic(graph):
    network = metropolis_hastings(graph)
    network.validate()
    matrix = mixing_matrix(network)[0]
    assert is_doubly_stochastic(matrix)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-15)


@pytest.mark.parametrize("graph", DIRECTED)
def test_metropolis_hastings_on_a_directed_graph_is_row_stochastic(graph):
    network = metropolis_hastings(graph)
    network.validate()
    assert set(network.out_neighbors()["site-1"]) == set(graph.successors("site-1"))
    assert is_row_stochastic(mixing_matrix(network)[0])


def test_metropolis_hastings_gives_the_textbook_weights():
    node = metropolis_hastings(star(4)).node("site-2")
    assert node.neighbors == (Neighbor("site-1", 0.25),)
    assert metropolis_hastings(nx.path_graph(2)).node_ids == ["0", "1"]


def test_uniform_weights_are_row_but_not_column_stochastic_on_a_star():
    network = network_from_graph(star(4), weights="uniform")
    assert [n.weight for n in network.node("site-1").neighbors] == [0.25] * 3
    matrix = mixing_matrix(network)[0]
    assert is_row_stochastic(matrix) and not is_column_stochastic(matrix)


def test_complete_graph_with_mh_weights_averages_in_one_step():
    matrix = mh_matrix(complete(5))
    np.testing.assert_allclose(matrix, np.full((5, 5), 0.2))
    assert second_largest_eigenvalue_modulus(matrix) == pytest.approx(0, abs=1e-12)
    assert spectral_gap(matrix) == pytest.approx(1)


def test_ring_of_four_with_mh_weights_has_slem_one_third():
    matrix = mh_matrix(ring(4))
    assert set(np.round(matrix[matrix > 0], 12)) == {round(1 / 3, 12)}
    np.testing.assert_allclose(np.sort(np.linalg.eigvals(matrix).real), [-1 / 3, 1 / 3, 1 / 3, 1])
    assert second_largest_eigenvalue_modulus(matrix) == pytest.approx(1 / 3)
    assert spectral_gap(matrix) == pytest.approx(2 / 3)


@pytest.mark.parametrize("graph", UNDIRECTED + DIRECTED)
def test_mixing_matrix_reproduces_the_network_weights(graph):
    network = metropolis_hastings(graph)
    matrix, ids = mixing_matrix(network)
    assert ids == list(graph)
    for i, node in enumerate(network.nodes):
        expected = np.zeros(len(ids))
        for neighbor in node.neighbors:
            expected[ids.index(neighbor.id)] = neighbor.weight
        expected[i] = 1 - sum(n.weight for n in node.neighbors)
        np.testing.assert_allclose(matrix[i], expected, rtol=0, atol=1e-15)


def test_mixing_matrix_gives_a_neighbor_without_weight_its_metropolis_hastings_weight():
    network = Network((Node("a", (Neighbor("b"),)), Node("b", (Neighbor("a", 0.5),))))
    np.testing.assert_array_equal(mixing_matrix(network)[0], [[0.5, 0.5], [0.5, 0.5]])


def test_graph_of_points_from_each_in_neighbor_to_its_node():
    network = Network(
        (Node("a", (Neighbor("c", 0.5),)), Node("b", (Neighbor("a", 0.5),)), Node("c"))
    )
    graph = graph_of(network)
    assert list(graph) == ["a", "b", "c"]
    assert set(graph.edges) == {("c", "a"), ("a", "b")}
    assert graph.edges["c", "a"]["weight"] == 0.5


def test_describe_reports_a_ring_of_four():
    report = describe(metropolis_hastings(ring(4)))
    assert (report.nodes, report.edges, report.directed) == (4, 4, False)
    assert report.row_stochastic and report.column_stochastic and report.doubly_stochastic
    assert report.slem == pytest.approx(1 / 3) and report.spectral_gap == pytest.approx(2 / 3)
    assert report.strongly_connected


def test_describe_reports_a_directed_and_a_disconnected_network():
    directed = describe(metropolis_hastings(random_directed(12, seed=1)))
    assert directed.directed and directed.strongly_connected and directed.row_stochastic
    apart = describe(Network((Node("a"), Node("b"))))
    assert (apart.edges, apart.strongly_connected) == (0, False)
    assert (apart.slem, apart.spectral_gap) == (1, 0)


def test_stochasticity_checks_reject_negative_entries_and_bad_sums():
    assert not is_row_stochastic(np.array([[1.5, -0.5], [0.5, 0.5]]))
    assert not is_row_stochastic(np.array([[0.5, 0.4], [0.5, 0.5]]))
    assert is_row_stochastic(np.array([[1.0, 0.0], [0.5, 0.5]]))
    assert not is_doubly_stochastic(np.array([[1.0, 0.0], [0.5, 0.5]]))


def contraction(matrix: np.ndarray, x0: np.ndarray, steps: int = 50) -> float:
    """Geometric mean per-step contraction of ||W^t x0 - avg|| over a run."""
    errors = [np.linalg.norm(x0 - x0.mean())]
    x = x0
    for _ in range(steps):
        x = matrix @ x
        errors.append(np.linalg.norm(x - x0.mean()))
    above = [e > 1e-12 * errors[0] for e in errors]  # stop once in rounding noise
    last = above.index(False) if False in above else steps
    return float((errors[last] / errors[0]) ** (1 / last))


@pytest.mark.parametrize("graph", UNDIRECTED + [directed_ring(6)])
def test_consensus_rate_bounds_the_empirical_contraction_toward_the_average(graph):
    matrix = mh_matrix(graph)
    x0 = np.random.default_rng(0).normal(size=len(matrix))
    assert contraction(matrix, x0) <= consensus_rate(matrix) + 1e-9


@pytest.mark.parametrize("graph", [ring(10), path(8), grid(3, 4)])
def test_consensus_rate_is_attained_by_the_slowest_eigenvector(graph):
    matrix = mh_matrix(graph)
    values, vectors = np.linalg.eigh(matrix)
    slowest = vectors[:, np.argsort(np.abs(values))[-2]]
    assert contraction(matrix, slowest) == pytest.approx(consensus_rate(matrix), abs=1e-6)


def test_row_stochastic_consensus_converges_to_a_weighted_average_at_the_slem_rate():
    matrix = mh_matrix(random_directed(20, p=0.12, seed=2))
    values, left = np.linalg.eig(matrix.T)
    pi = np.real(left[:, np.argmax(values.real)])
    pi /= pi.sum()
    x = np.random.default_rng(1).normal(size=len(matrix))
    limit, errors = pi @ x, []
    for _ in range(40):
        x = matrix @ x
        errors.append(np.linalg.norm(x - limit))
    assert np.allclose(x, limit, atol=1e-2 * errors[0])
    assert (errors[-1] / errors[9]) ** (1 / 30) <= consensus_rate(matrix) + 0.05


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ring(0), "n must be an integer >= 1, got 0"),
        (lambda: path(-1), "n must be an integer >= 1, got -1"),
        (lambda: star(2.5), "n must be an integer >= 1, got 2.5"),
        (lambda: complete(True), "n must be an integer >= 1, got True"),
        (lambda: directed_ring(0), "n must be an integer >= 1"),
        (lambda: grid(0, 3), "rows must be an integer >= 1, got 0"),
        (lambda: grid(2, 0), "cols must be an integer >= 1, got 0"),
        (lambda: grid_shape(0), "n must be an integer >= 1"),
        (lambda: random_connected(0), "n must be an integer >= 1"),
        (lambda: random_connected(5, p=1.5), r"p must be a number in \[0, 1\], got 1.5"),
        (lambda: random_connected(5, p=float("nan")), "p must be a number in"),
        (lambda: random_directed(5, p=-0.1), "p must be a number in"),
        (lambda: random_connected(5, seed=-1), "seed must be an integer >= 0, got -1"),
        (lambda: random_connected(5, mean_degree=-1), "mean_degree must be a number >= 0"),
        (lambda: network_from_graph(ring(3), weights="max"), "weights must be .* got 'max'"),
        (lambda: metropolis_hastings(nx.Graph()), "graph has no nodes"),
        (lambda: metropolis_hastings(nx.MultiGraph([(0, 1)])), "multigraph"),
        (lambda: metropolis_hastings(nx.Graph([(0, 0), (0, 1)])), r"self-loops at \[0\]"),
        (lambda: spectral_gap(np.ones((2, 3))), r"square matrix, got shape \(2, 3\)"),
        (lambda: is_row_stochastic(np.ones(3)), "square matrix"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()
