"""Algorithms as pure step functions over small NamedTuple states (optax style).

An ``Algorithm`` is three pure functions that one generic executor loop drives:

    payload = send(state)                  what this node shares this iteration
    mixed   = W-combination of payloads    done by the loop, after the exchange
    state   = update(state, mixed, grad)   local step; grad(x) is this batch's gradient

``push`` algorithms mix with column-stochastic weights set by the sender (each node
knows only its out-degree), so they work on directed graphs; the others mix with the
row-stochastic weights of the network config. Values are trees: a tensor, or a
name-keyed dict of trees. Functions never change a tensor in place, so what was sent
stays valid. ``state.x`` is always the node's current estimate of the parameters.
Each factory's docstring gives its recursion; ``_reference`` has the matrix forms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import torch

Tree = Any
"""A tensor (or number), or a ``dict[str, Tree]``."""
Params = dict[str, torch.Tensor]
GradFn = Callable[[Params], Params]

ADAM_CLIP = 1e6
"""GTAdam's bound G on the second moment (NVFlare's ``self.G``)."""


class Algorithm(NamedTuple):
    """A decentralized algorithm as pure functions.

    Attributes:
        init: initial state from the node's initial parameters.
        send: the payload to share (a dict of trees), computed from the state alone.
        update: next state from the state, the mixed payloads and a gradient function.
        push: mix with sender-side column-stochastic weights (directed graphs).
    """

    init: Callable[[Params], Any]
    send: Callable[[Any], dict[str, Tree]]
    update: Callable[[Any, dict[str, Tree], GradFn], Any]
    push: bool = False


class Scaling(NamedTuple):
    """How a tracker becomes a descent direction: ``init(x0)``, ``update(y, s) -> (d, s)``."""

    init: Callable[[Params], Any]
    update: Callable[[Params, Any], tuple[Params, Any]]


def tree_map(fn: Callable[..., Any], tree: Tree, *rest: Tree) -> Tree:
    """Apply ``fn`` leaf by leaf to trees of the same shape."""
    if isinstance(tree, dict):
        return {key: tree_map(fn, value, *(other[key] for other in rest))
                for key, value in tree.items()}
    return fn(tree, *rest)


def leaves(tree: Tree) -> list[Any]:
    """The leaves of a tree, depth first in key order."""
    if isinstance(tree, dict):
        return [leaf for value in tree.values() for leaf in leaves(value)]
    return [tree]


def rebuild(tree: Tree, values: Iterator[Any]) -> Tree:
    """A tree shaped like ``tree`` whose leaves are taken in order from ``values``."""
    if isinstance(tree, dict):
        return {key: rebuild(value, values) for key, value in tree.items()}
    return next(values)


def weighted_sum(own: Tree, own_weight: float, others: Sequence[tuple[Tree, float]]) -> Tree:
    """``own_weight * own + sum(w * other)``, added in the given order.

    Tensor leaves are combined with torch's multi-tensor (``_foreach``) kernels.
    """
    mine = leaves(own)
    if not all(isinstance(leaf, torch.Tensor) for leaf in mine):
        return tree_map(lambda a, *bs: sum((b * w for b, (_, w) in zip(bs, others, strict=True)),
                                           a * own_weight), own, *(t for t, _ in others))
    total = torch._foreach_mul(mine, own_weight)
    for tree, weight in others:
        torch._foreach_add_(total, leaves(tree), alpha=weight)
    return rebuild(own, iter(total))


def _step(x: Tree, stepsize: float, direction: Tree) -> Tree:
    return tree_map(lambda a, d: a - stepsize * d, x, direction)


def _zeros(tree: Tree) -> Tree:
    return tree_map(torch.zeros_like, tree)


class DGDState(NamedTuple):
    x: Params


def dgd(stepsize: float) -> Algorithm:
    """Distributed gradient descent, combine then adapt (NVFlare's ``DGDExecutor``).

    x <- W x;  x <- x - a * grad f_i(x)  on this iteration's batch.
    """
    def update(state: DGDState, mixed: dict[str, Tree], grad: GradFn) -> DGDState:
        x = mixed["x"]
        return DGDState(_step(x, stepsize, grad(x)))

    return Algorithm(DGDState, lambda s: {"x": s.x}, update)


def identity() -> Scaling:
    """The tracker itself is the direction (plain gradient tracking)."""
    return Scaling(lambda x0: (), lambda y, state: (y, state))


class AdamState(NamedTuple):
    m: Params
    v: Params


def adam_scaling(beta1: float, beta2: float, epsilon: float, clip: float = ADAM_CLIP
                 ) -> Scaling:
    """GTAdam's scaling of the tracker y, without bias correction (as NVFlare's).

    m <- b1 m + (1-b1) y;  v <- min(b2 v + (1-b2) y^2, G);  d = m / sqrt(v + eps).
    """
    def update(y: Params, state: AdamState) -> tuple[Params, AdamState]:
        m = tree_map(lambda m, g: beta1 * m + (1 - beta1) * g, state.m, y)
        v = tree_map(lambda v, g: (beta2 * v + (1 - beta2) * g**2).clamp(max=clip), state.v, y)
        return tree_map(lambda m, v: m / (v + epsilon).sqrt(), m, v), AdamState(m, v)

    return Scaling(lambda x0: AdamState(_zeros(x0), _zeros(x0)), update)


class GTState(NamedTuple):
    x: Params
    y: Params
    g: Params
    scaling: Any = ()


def gt(stepsize: float, scaling: Scaling | None = None) -> Algorithm:
    """Gradient tracking (NVFlare's ``GTExecutor``), tracker y(0) = 0, old gradient g(0) = 0.

    x <- W x - a * d(y)   (d the scaling of the tracker *before* mixing; identity for GT)
    y <- W y + grad f_i(x) - g;  g <- grad f_i(x)   (x the new parameters)
    """
    scaling = scaling or identity()

    def init(x0: Params) -> GTState:
        zeros = _zeros(x0)
        return GTState(x0, zeros, zeros, scaling.init(x0))

    def update(state: GTState, mixed: dict[str, Tree], grad: GradFn) -> GTState:
        direction, scaled = scaling.update(state.y, state.scaling)
        x = _step(mixed["x"], stepsize, direction)
        g = grad(x)
        y = tree_map(lambda wy, new, old: wy + new - old, mixed["y"], g, state.g)
        return GTState(x, y, g, scaled)

    return Algorithm(init, lambda s: {"x": s.x, "y": s.y}, update)


def gtadam(stepsize: float, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8
           ) -> Algorithm:
    """GTAdam (NVFlare's ``GTADAMExecutor``): gradient tracking with ``adam_scaling``.

    m <- b1 m + (1-b1) y;  v <- min(b2 v + (1-b2) y^2, 1e6);  x <- W x - a * m / sqrt(v + eps);
    then the tracker update of ``gt``.
    """
    return gt(stepsize, adam_scaling(beta1, beta2, epsilon))


class ExtraState(NamedTuple):
    x: Params
    prev: Params | None = None
    mixed_prev: Params | None = None
    grad_prev: Params | None = None


def extra(stepsize: float) -> Algorithm:
    """EXTRA (Shi, Ling, Wu, Yin 2015): exact convergence with a constant step, W symmetric.

    x(1) = W x(0) - a grad f_i(x(0));
    x(k+1) = x(k) + W x(k) - (x(k-1) + W x(k-1)) / 2 - a (grad f_i(x(k)) - grad f_i(x(k-1))).
    """
    def _extra_step(x: Any, wx: Any, prev: Any, mixed_prev: Any, g: Any, g_prev: Any) -> Any:
        return x + wx - 0.5 * (prev + mixed_prev) - stepsize * (g - g_prev)

    def update(state: ExtraState, mixed: dict[str, Tree], grad: GradFn) -> ExtraState:
        wx, g = mixed["x"], grad(state.x)
        if state.prev is None:
            x = _step(wx, stepsize, g)
        else:
            x = tree_map(_extra_step, state.x, wx, state.prev, state.mixed_prev, g,
                         state.grad_prev)
        return ExtraState(x, state.x, wx, g)

    return Algorithm(ExtraState, lambda s: {"x": s.x}, update)


class PushState(NamedTuple):
    x: Params
    u: Params
    v: torch.Tensor
    t: int = 0


def _ones_like_scalar(x0: Params) -> torch.Tensor:
    first = next(iter(x0.values()))
    return torch.ones((), dtype=first.dtype, device=first.device)


def subgradient_push(stepsize: float, power: float = 0.0) -> Algorithm:
    """Subgradient-push (Nedić, Olshevsky 2015) with column-stochastic A and a(t) = a / (t+1)^p.

    w <- A u;  v <- A v (v(0) = 1);  x = w / v;  u <- w - a(t) grad f_i(x).
    """
    def init(x0: Params) -> PushState:
        return PushState(x0, x0, _ones_like_scalar(x0))

    def update(state: PushState, mixed: dict[str, Tree], grad: GradFn) -> PushState:
        v = mixed["v"]
        x = tree_map(lambda w: w / v, mixed["u"])
        u = _step(mixed["u"], stepsize / (state.t + 1) ** power, grad(x))
        return PushState(x, u, v, state.t + 1)

    return Algorithm(init, lambda s: {"u": s.u, "v": s.v}, update, push=True)


class PushDIGingState(NamedTuple):
    x: Params
    u: Params
    v: torch.Tensor
    y: Params
    g: Params


def push_diging(stepsize: float) -> Algorithm:
    """Push-DIGing (Nedić, Olshevsky, Shi 2017): exact, constant step, directed graphs.

    u <- A (u - a y);  v <- A v;  x = u / v;  y <- A y + grad f_i(x) - g;  g <- grad f_i(x),
    with u(0) = x(0), v(0) = 1 and, as in gradient tracking, y(0) = g(0) = 0.
    """
    def init(x0: Params) -> PushDIGingState:
        zeros = _zeros(x0)
        return PushDIGingState(x0, x0, _ones_like_scalar(x0), zeros, zeros)

    def send(state: PushDIGingState) -> dict[str, Tree]:
        return {"u": _step(state.u, stepsize, state.y), "v": state.v, "y": state.y}

    def update(state: PushDIGingState, mixed: dict[str, Tree], grad: GradFn) -> PushDIGingState:
        v = mixed["v"]
        x = tree_map(lambda u: u / v, mixed["u"])
        g = grad(x)
        y = tree_map(lambda ay, new, old: ay + new - old, mixed["y"], g, state.g)
        return PushDIGingState(x, mixed["u"], v, y, g)

    return Algorithm(init, send, update, push=True)
