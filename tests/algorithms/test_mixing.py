"""The mixing matrix stays sparse on large networks, and its flaws are named."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from peerflow.actors import Network
from peerflow.algorithms import (
    _mixing,
    consensus_reference,
    describe,
    metropolis_hastings,
    mixing_matrix,
    random_connected,
    ring,
    second_largest_eigenvalue_modulus,
    sparse_mixing_matrix,
    stochasticity_warnings,
)

SKEWED = Network.from_dict({"nodes": [
    {"id": "a", "neighbors": [{"id": "b", "weight": 0.9}]},
    {"id": "b", "neighbors": [{"id": "a", "weight": 0.1}, {"id": "c", "weight": 0.1}]},
    {"id": "c", "neighbors": [{"id": "b", "weight": 0.5}]}]})


def test_the_sparse_and_dense_matrices_agree() -> None:
    network = metropolis_hastings(random_connected(30, seed=2))
    dense, ids = mixing_matrix(network)
    matrix, sparse_ids = sparse_mixing_matrix(network)
    assert ids == sparse_ids and sp.issparse(matrix)
    np.testing.assert_array_equal(matrix.toarray(), dense)


@pytest.mark.usefixtures("no_dense_algebra")
def test_a_large_network_is_described_without_any_dense_matrix() -> None:
    network = metropolis_hastings(random_connected(2_000, seed=0))
    report = describe(network)
    assert report.doubly_stochastic and report.strongly_connected
    assert 0.5 < report.slem < 1.0
    matrix, _ = sparse_mixing_matrix(network)
    assert consensus_reference(matrix, np.ones(2_000), 5)[-1] == pytest.approx(np.ones(2_000))


def test_the_iterative_slem_matches_the_dense_one(monkeypatch: pytest.MonkeyPatch) -> None:
    network = metropolis_hastings(ring(40))
    dense = second_largest_eigenvalue_modulus(mixing_matrix(network)[0])
    monkeypatch.setattr(_mixing, "DENSE_EIGEN_NODES", 10)
    assert second_largest_eigenvalue_modulus(sparse_mixing_matrix(network)[0]) == (
        pytest.approx(dense, abs=1e-9))


def test_a_dense_matrix_of_a_huge_network_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_mixing, "MAX_DENSE_NODES", 10)
    with pytest.raises(ValueError, match="dense W of 12 nodes is too large.*sparse_mixing_matrix"):
        mixing_matrix(metropolis_hastings(ring(12)))


def test_weights_that_are_not_doubly_stochastic_are_named_by_column() -> None:
    matrix, ids = sparse_mixing_matrix(SKEWED)
    [line] = stochasticity_warnings(matrix, ids)
    assert "not column stochastic" in line
    assert "'a' (0.2), 'b' (2.2), 'c' (0.6)" in line
    assert stochasticity_warnings(matrix, ids, columns=False) == []
    assert stochasticity_warnings(*sparse_mixing_matrix(metropolis_hastings(ring(5)))) == []


def test_rows_with_a_negative_entry_or_a_bad_sum_are_named() -> None:
    [line] = stochasticity_warnings(np.array([[1.5, -0.5], [0.4, 0.5]]), ["x", "y"],
                                    columns=False)
    assert "not row stochastic" in line and "'x' (1)" in line and "'y' (0.9)" in line
