"""The mixing matrix W of a network, its stochasticity and its spectral gap.

Row i of W holds node i's in-weights, its self weight ``1 - sum`` on the
diagonal. W is kept sparse (``scipy.sparse``): a network of n nodes has n plus
its edge count entries, not n^2, so 100,000 nodes cost megabytes, not 80 GB.
Small matrices take the exact dense eigen-solver; larger ones ARPACK's
iterative one for the two eigenvalues of largest modulus.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import ArpackNoConvergence, eigs, eigsh

from peerflow.actors import Network, is_symmetric, with_default_weights

Matrix = np.ndarray | sp.sparray
MAX_DENSE_NODES = 10_000
"""``mixing_matrix`` (dense) refuses larger networks: 10,000^2 floats are 800 MB."""
DENSE_EIGEN_NODES = 500
"""Up to this many nodes the SLEM comes from the exact dense eigen-solver."""
ARPACK_MAXITER = 1_000
"""Restarts ARPACK may take before the SLEM is reported as not computed (nan)."""
_SHOWN = 5


def sparse_mixing_matrix(network: Network) -> tuple[sp.csr_array, list[str]]:
    """W as a sparse CSR array, and the node order.

    Missing weights are the Metropolis-Hastings weights ``run`` would set.

    Raises:
        ConfigError: the network is invalid.
    """
    network = with_default_weights(network)
    ids = network.node_ids
    index = {node_id: k for k, node_id in enumerate(ids)}
    counts = np.fromiter((len(node.neighbors) for node in network.nodes), np.intp, len(ids))
    total = int(counts.sum())
    edges = [n for node in network.nodes for n in node.neighbors]
    cols = np.fromiter((index[n.id] for n in edges), np.intp, total)
    weights = np.fromiter((n.weight for n in edges), float, total)
    rows = np.repeat(np.arange(len(ids)), counts)
    self_weights = 1.0 - np.bincount(rows, weights, minlength=len(ids))
    diagonal = np.arange(len(ids))
    matrix = sp.csr_array((np.concatenate([weights, self_weights]),
                           (np.concatenate([rows, diagonal]), np.concatenate([cols, diagonal]))),
                          shape=(len(ids), len(ids)))
    return matrix, ids


def mixing_matrix(network: Network) -> tuple[np.ndarray, list[str]]:
    """W as a dense array (row i: node i's in-weights, self weight on the diagonal), and
    the node order. Missing weights are the Metropolis-Hastings weights ``run`` would set.

    Raises:
        ConfigError: the network is invalid.
        ValueError: more than ``MAX_DENSE_NODES`` nodes (use ``sparse_mixing_matrix``).
    """
    if len(network.nodes) > MAX_DENSE_NODES:
        raise ValueError(f"a dense W of {len(network.nodes)} nodes is too large (at most "
                         f"{MAX_DENSE_NODES}); use sparse_mixing_matrix")
    matrix, ids = sparse_mixing_matrix(network)
    return matrix.toarray(), ids


def is_row_stochastic(matrix: Matrix, tol: float = 1e-9) -> bool:
    """True if W (dense or sparse) is non-negative and each row sums to 1 (within tol).

    Raises:
        ValueError: W is not a square matrix.
    """
    return not _off_rows(_square(matrix), tol)


def is_column_stochastic(matrix: Matrix, tol: float = 1e-9) -> bool:
    """True if W (dense or sparse) is non-negative and each column sums to 1 (within tol).

    Raises:
        ValueError: W is not a square matrix.
    """
    return not _off_rows(_square(matrix).T, tol)


def is_doubly_stochastic(matrix: Matrix, tol: float = 1e-9) -> bool:
    """True if W is both row and column stochastic.

    Raises:
        ValueError: W is not a square matrix.
    """
    return is_row_stochastic(matrix, tol) and is_column_stochastic(matrix, tol)


def stochasticity_warnings(matrix: Matrix, ids: list[str], *, columns: bool = True,
                           tol: float = 1e-9) -> list[str]:
    """One line per way W falls short: rows (and, with ``columns``, columns) with a
    negative entry or a sum other than 1, naming their nodes and sums.

    Raises:
        ValueError: W is not a square matrix.
    """
    matrix = _square(matrix)
    checks = [("row", matrix, "a node's in-weights and self weight")]
    if columns:
        checks.append(("column", matrix.T, "the weights given to a node's value"))
    lines = []
    for kind, rows, meaning in checks:
        off = _off_rows(rows, tol)
        if off:
            sums = _sums(rows)
            named = ", ".join(f"{ids[k]!r} ({sums[k]:.4g})" for k in off[:_SHOWN])
            more = f" and {len(off) - _SHOWN} more" if len(off) > _SHOWN else ""
            lines.append(f"W is not {kind} stochastic: the {kind}s ({meaning}) of "
                         f"{named}{more} do not sum to 1 or hold a negative entry")
    return lines


def second_largest_eigenvalue_modulus(matrix: Matrix) -> float:
    """Second largest |eigenvalue| of W (0 for a single node; nan when ARPACK does not
    converge in ``ARPACK_MAXITER`` restarts on a matrix above ``DENSE_EIGEN_NODES``).

    Raises:
        ValueError: W is not a square matrix.
    """
    matrix = _square(matrix)
    if matrix.shape[0] <= 1:
        return 0.0
    if matrix.shape[0] <= DENSE_EIGEN_NODES:
        dense = matrix.toarray() if sp.issparse(matrix) else matrix
        return float(np.sort(np.abs(np.linalg.eigvals(dense)))[-2])
    return _arpack_slem(sp.csr_array(matrix))


def spectral_gap(matrix: Matrix) -> float:
    """1 - SLEM: 0 for a disconnected or periodic W, 1 for W = J/n.

    Raises:
        ValueError: W is not a square matrix.
    """
    return 1.0 - second_largest_eigenvalue_modulus(matrix)


def consensus_rate(matrix: Matrix) -> float:
    """Geometric contraction factor of x(t+1) = W x(t) toward its limit: the SLEM.

    For symmetric doubly stochastic W, ``||x(t+1) - avg|| <= SLEM * ||x(t) - avg||``
    at every step. For W only row stochastic (or not symmetric), x(t) converges to
    the pi-weighted average (pi W = pi) and the SLEM is the asymptotic rate:
    ``||x(t) - x*||^(1/t)`` tends to at most the SLEM, after a transient.

    Raises:
        ValueError: W is not a square matrix.
    """
    return second_largest_eigenvalue_modulus(matrix)


@dataclass(frozen=True, slots=True)
class TopologyReport:
    """Summary of a network's graph and mixing matrix (``peerflow topology``).

    ``edges`` counts links: an undirected one once (not as two arcs), a directed arc once.
    ``slem`` and ``spectral_gap`` are nan when the iterative eigen-solver did not converge.
    """

    nodes: int
    edges: int
    directed: bool
    row_stochastic: bool
    column_stochastic: bool
    doubly_stochastic: bool
    slem: float
    spectral_gap: float
    strongly_connected: bool


def describe(network: Network, matrix: sp.sparray | None = None) -> TopologyReport:
    """Report node and edge counts, stochasticity, SLEM and connectivity.

    Args:
        network: the network.
        matrix: its ``sparse_mixing_matrix``, if the caller has it already.

    Raises:
        ConfigError: the network is invalid.
    """
    if matrix is None:
        matrix, _ = sparse_mixing_matrix(network)
    slem = second_largest_eigenvalue_modulus(matrix)
    components, _ = connected_components(matrix, directed=True, connection="strong")
    directed = not is_symmetric(network)
    arcs = sum(len(node.neighbors) for node in network.nodes)
    return TopologyReport(
        nodes=len(network.nodes),
        edges=arcs if directed else arcs // 2,
        directed=directed,
        row_stochastic=is_row_stochastic(matrix),
        column_stochastic=is_column_stochastic(matrix),
        doubly_stochastic=is_doubly_stochastic(matrix),
        slem=slem,
        spectral_gap=1.0 - slem,
        strongly_connected=components == 1,
    )


def _arpack_slem(matrix: sp.csr_array) -> float:
    symmetric = abs(matrix - matrix.T).max() <= 1e-12
    solve = eigsh if symmetric else eigs
    try:
        values = solve(matrix, k=2, which="LM", return_eigenvectors=False,
                       maxiter=ARPACK_MAXITER)
    except ArpackNoConvergence:
        return math.nan
    return float(np.sort(np.abs(values))[0])


def _off_rows(matrix: Matrix, tol: float) -> list[int]:
    """Indices of the rows with a negative entry or a sum further than tol from 1."""
    negative = (matrix < -tol).sum(axis=1) if sp.issparse(matrix) else (matrix < -tol).any(1)
    bad = np.asarray(negative).ravel().astype(bool) | (np.abs(_sums(matrix) - 1.0) > tol)
    return [int(k) for k in np.flatnonzero(bad)]


def _sums(matrix: Matrix) -> np.ndarray:
    return np.asarray(matrix.sum(axis=1), dtype=float).ravel()


def _square(matrix: Matrix) -> Matrix:
    if not sp.issparse(matrix):
        matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"W must be a square matrix, got shape {matrix.shape}")
    return matrix
