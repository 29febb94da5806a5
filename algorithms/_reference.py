"""Centralized matrix forms of the algorithms, for tests and benchmarks.

Row i of every (nodes, dim) array is node i. ``W`` is the row-stochastic mixing
matrix of the network (``mixing_matrix``, or ``sparse_mixing_matrix`` where the
function says so); ``A`` the column-stochastic push matrix
(``column_stochastic``). ``grad(X)`` returns the local gradients row by row. Each
function returns the trajectory of the nodes' estimates, shape (iterations + 1,
nodes, dim). Consensus, push-sum, DGD and gradient tracking also take W(t) (or A(t))
per iteration, a function of t, for time-varying networks. These are written from the
papers' matrix forms, independently of the step functions, so that agreement of the
two is a real check.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.sparse import sparray

from peerflow.actors import Network

from ._tunables import ADAM_CLIP, GTAdamTunables, SubgradientPushTunables

Gradients = Callable[[np.ndarray], np.ndarray]
Matrix = np.ndarray | sparray
Mixings = Matrix | Callable[[int], Matrix]
"""W, or W(t) per iteration for a time-varying network (``MixingSchedule.matrix``)."""
_ADAM = GTAdamTunables()
_PUSH = SubgradientPushTunables()


def column_stochastic(network: Network) -> tuple[np.ndarray, list[str]]:
    """A with A[j, i] = 1 / (outdeg_i + 1) for j = i or an out-neighbour of i, and the order."""
    ids = network.node_ids
    index = {node_id: k for k, node_id in enumerate(ids)}
    matrix = np.zeros((len(ids), len(ids)))
    for node_id, targets in network.out_neighbors().items():
        i = index[node_id]
        for j in [i, *(index[t] for t in targets)]:
            matrix[j, i] = 1.0 / (len(targets) + 1)
    return matrix, ids


def consensus_reference(w: Mixings, x0: np.ndarray, iterations: int) -> np.ndarray:
    """x(t+1) = W(t) x(t), so x(T) = W(T-1)...W(0) x(0); W dense or sparse
    (``sparse_mixing_matrix``), so large networks fit."""
    at, x, out = _per_iteration(w), x0, [x0]
    for t in range(iterations):
        x = at(t) @ x
        out.append(x)
    return np.array(out)


def push_sum_reference(a: Mixings, x0: np.ndarray, iterations: int) -> np.ndarray:
    """x <- A(t) x, w <- A(t) w (w(0) = 1); the estimates x / w."""
    at, x, w, out = _per_iteration(a), x0, np.ones(len(x0)), [x0]
    for t in range(iterations):
        x, w = at(t) @ x, at(t) @ w
        out.append(x / w.reshape((-1,) + (1,) * (x.ndim - 1)))
    return np.array(out)


def dgd_reference(w: Mixings, x0: np.ndarray, grad: Gradients, stepsize: float,
                  iterations: int) -> np.ndarray:
    """X <- W(t) X - a grad F(W(t) X)."""
    at, x, out = _per_iteration(w), x0, [x0]
    for t in range(iterations):
        mixed = at(t) @ x
        x = mixed - stepsize * grad(mixed)
        out.append(x)
    return np.array(out)


def gt_reference(w: Mixings, x0: np.ndarray, grad: Gradients, stepsize: float,
                 iterations: int, adam: tuple[float, float, float] | None = None) -> np.ndarray:
    """X <- W(t) X - a D(Y);  Y <- W(t) Y + grad F(X) - G;  G <- grad F(X);  Y(0) = G(0) = 0.

    D(Y) = Y, or with ``adam = (b1, b2, eps)``: M <- b1 M + (1-b1) Y,
    V <- min(b2 V + (1-b2) Y^2, G), D = M / sqrt(V + eps) (G = ``ADAM_CLIP``).
    """
    at, x, y, g, m, v, out = _per_iteration(w), x0, np.zeros_like(x0), np.zeros_like(x0), \
        0.0, 0.0, [x0]
    for t in range(iterations):
        w_t, direction = at(t), y
        if adam is not None:
            b1, b2, eps = adam
            m = b1 * m + (1 - b1) * y
            v = np.minimum(b2 * v + (1 - b2) * y**2, ADAM_CLIP)
            direction = m / np.sqrt(v + eps)
        x = w_t @ x - stepsize * direction
        new = grad(x)
        y, g = w_t @ y + new - g, new
        out.append(x)
    return np.array(out)


def gtadam_reference(w: Mixings, x0: np.ndarray, grad: Gradients, stepsize: float,
                     iterations: int, beta1: float = _ADAM.beta1, beta2: float = _ADAM.beta2,
                     epsilon: float = _ADAM.epsilon) -> np.ndarray:
    """``gt_reference`` with the Adam scaling of the tracker."""
    return gt_reference(w, x0, grad, stepsize, iterations, adam=(beta1, beta2, epsilon))


def extra_reference(w: np.ndarray, x0: np.ndarray, grad: Gradients, stepsize: float,
                    iterations: int) -> np.ndarray:
    """X(1) = W X(0) - a grad F(X(0));
    X(k+2) = (I + W) X(k+1) - (I + W)/2 X(k) - a (grad F(X(k+1)) - grad F(X(k))).
    """
    identity = np.eye(len(w))
    out = [x0, w @ x0 - stepsize * grad(x0)][: iterations + 1]
    while len(out) < iterations + 1:
        prev, x = out[-2], out[-1]
        out.append((identity + w) @ x - 0.5 * (identity + w) @ prev
                   - stepsize * (grad(x) - grad(prev)))
    return np.array(out)


def subgradient_push_reference(a: np.ndarray, x0: np.ndarray, grad: Gradients,
                               stepsize: float, iterations: int, power: float = _PUSH.power
                               ) -> np.ndarray:
    """W = A U;  V <- A V;  Z = W / V;  U <- W - a / (t+1)^p grad F(Z);  U(0) = X(0), V(0) = 1."""
    u, v, out = x0, np.ones((len(x0), 1)), [x0]
    for t in range(iterations):
        mixed, v = a @ u, a @ v
        z = mixed / v
        u = mixed - stepsize / (t + 1) ** power * grad(z)
        out.append(z)
    return np.array(out)


def push_diging_reference(a: np.ndarray, x0: np.ndarray, grad: Gradients, stepsize: float,
                          iterations: int) -> np.ndarray:
    """U <- A (U - a Y);  V <- A V;  X = U / V;  Y <- A Y + grad F(X) - G;  G <- grad F(X)."""
    u, v, y, g, out = x0, np.ones((len(x0), 1)), np.zeros_like(x0), np.zeros_like(x0), [x0]
    for _ in range(iterations):
        u, v = a @ (u - stepsize * y), a @ v
        x = u / v
        new = grad(x)
        y, g = a @ y + new - g, new
        out.append(x)
    return np.array(out)


def nids_reference(w: np.ndarray, x0: np.ndarray, grad: Gradients, stepsize: float,
                   iterations: int) -> np.ndarray:
    """NIDS with W~ = (I + W) / 2, started from X(1) = W~ X(0):
    X(2) = W~ (X(1) - a grad F(X(1)));
    X(k+1) = W~ (2 X(k) - X(k-1) - a (grad F(X(k)) - grad F(X(k-1)))).
    """
    half = 0.5 * (np.eye(len(w)) + w)
    out = [x0, half @ x0][: iterations + 1]
    if len(out) < iterations + 1:
        out.append(half @ (out[1] - stepsize * grad(out[1])))
    while len(out) < iterations + 1:
        prev, x = out[-2], out[-1]
        out.append(half @ (2 * x - prev - stepsize * (grad(x) - grad(prev))))
    return np.array(out)


def _per_iteration(w: Mixings) -> Callable[[int], Matrix]:
    if callable(w):
        return w
    return lambda t: w
