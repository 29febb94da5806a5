"""Learning algorithms as pure step functions over small NamedTuple states (optax style).

Each factory returns an ``Algorithm`` (``_loop``) that the one executor loop drives:

    payload     = send(state)                      what this node shares this iteration
    mixed       = the W- (or pushed) combination   done by the loop's mixing
    at, pending = query(state, mixed)              where the gradient is wanted
    state       = update(pending, gradient at at)  the local step

``push`` algorithms mix with column-stochastic weights set by the sender (each node
knows only its out-degree), so they work on directed graphs; the others mix with the
row-stochastic weights of the network config. Values are trees: a tensor, or a
name-keyed dict of trees. Functions never change a tensor in place, so what was sent
stays valid. ``state.x`` is always the node's current estimate of the parameters.
Each factory's docstring gives its recursion; ``_reference`` has the matrix forms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from ._loop import Algorithm
from ._trees import Tree, leaves, rebuild, tree_map, weighted_sum
from ._tunables import ADAM_CLIP, GTAdamTunables, SubgradientPushTunables

__all__ = ["ADAM_CLIP", "Algorithm", "Params", "Scaling", "Tree", "adam_scaling", "dgd",
           "extra", "gt", "gtadam", "leaves", "nids", "push_diging", "rebuild", "subgradient_push",
           "tree_map", "weighted_sum"]

Params = dict[str, torch.Tensor]
_ADAM = GTAdamTunables()
_PUSH = SubgradientPushTunables()


class Scaling(NamedTuple):
    """How a tracker becomes a descent direction: ``init(x0)``, ``update(y, s) -> (d, s)``."""

    init: Callable[[Params], Any]
    update: Callable[[Params, Any], tuple[Params, Any]]


def _step(x: Tree, stepsize: float, direction: Tree) -> Tree:
    """x - stepsize * direction, computed as NVFlare's ``param.add_(d, alpha=-stepsize)``
    (one fused multiply-add per entry where the CPU has FMA), so runs match it bit for bit."""
    return tree_map(lambda a, d: (a.add(d, alpha=-stepsize) if isinstance(a, torch.Tensor)
                                  else a - stepsize * d), x, direction)


def _zeros(tree: Tree) -> Tree:
    return tree_map(torch.zeros_like, tree)


def _tracked(mixed_y: Tree, g: Tree, g_old: Tree) -> Tree:
    """The tracker update y <- W y + grad f_i(x_new) - grad f_i(x_old)."""
    return tree_map(lambda wy, new, old: wy + new - old, mixed_y, g, g_old)


class DGDState(NamedTuple):
    x: Params


def dgd(stepsize: float) -> Algorithm:
    """Distributed gradient descent, combine then adapt (NVFlare's ``DGDExecutor``).

    x <- W x;  x <- x - a * grad f_i(x)  on this iteration's batch.
    """
    def query(state: DGDState, mixed: dict[str, Tree]) -> tuple[Params, Params]:
        return mixed["x"], mixed["x"]

    def update(x: Params, g: Params) -> DGDState:
        return DGDState(_step(x, stepsize, g))

    return Algorithm(DGDState, lambda s: {"x": s.x}, query, update)


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

    def query(state: GTState, mixed: dict[str, Tree]) -> tuple[Params, tuple[Any, ...]]:
        direction, scaled = scaling.update(state.y, state.scaling)
        x = _step(mixed["x"], stepsize, direction)
        return x, (x, mixed["y"], state.g, scaled)

    def update(pending: tuple[Any, ...], g: Params) -> GTState:
        x, wy, g_old, scaled = pending
        return GTState(x, _tracked(wy, g, g_old), g, scaled)

    return Algorithm(init, lambda s: {"x": s.x, "y": s.y}, query, update)


def gtadam(stepsize: float, beta1: float = _ADAM.beta1, beta2: float = _ADAM.beta2,
           epsilon: float = _ADAM.epsilon) -> Algorithm:
    """GTAdam (NVFlare's ``GTADAMExecutor``): gradient tracking with ``adam_scaling``.

    m <- b1 m + (1-b1) y;  v <- min(b2 v + (1-b2) y^2, G);  x <- W x - a * m / sqrt(v + eps);
    then the tracker update of ``gt``; G is ``ADAM_CLIP``, the defaults ``GTAdamTunables``'.
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

    def query(state: ExtraState, mixed: dict[str, Tree]
              ) -> tuple[Params, tuple[ExtraState, Params]]:
        return state.x, (state, mixed["x"])

    def update(pending: tuple[ExtraState, Params], g: Params) -> ExtraState:
        state, wx = pending
        if state.prev is None:
            x = _step(wx, stepsize, g)
        else:
            x = tree_map(_extra_step, state.x, wx, state.prev, state.mixed_prev, g,
                         state.grad_prev)
        return ExtraState(x, state.x, wx, g)

    return Algorithm(ExtraState, lambda s: {"x": s.x}, query, update)


class NIDSState(NamedTuple):
    x: Params
    prev: Params | None = None
    g: Params | None = None
    g_prev: Params | None = None


def nids(stepsize: float) -> Algorithm:
    """NIDS (Li, Shi, Yan 2019), smooth case: exact with a constant step below 2/L on any
    undirected graph, whatever W's smallest eigenvalue (which bounds EXTRA's step).

    With W~ = (I + W)/2, a node sends z and keeps W~ z = (z + W z)/2:
    z = 2 x(k) - x(k-1) - a (grad f_i(x(k)) - grad f_i(x(k-1))),  x(k+1) = W~ z.
    z needs the gradient at x(k) before sending, so each gradient is taken where its
    x is made, and the first iteration, with none yet, mixes x(1) = W~ x(0); then
    z = x(1) - a grad f_i(x(1)).
    """
    def _z(x: Any, prev: Any, g: Any, g_prev: Any) -> Any:
        return 2 * x - prev - stepsize * (g - g_prev)

    def send(state: NIDSState) -> dict[str, Tree]:
        if state.g is None:
            return {"x": state.x}
        if state.prev is None:
            return {"x": _step(state.x, stepsize, state.g)}
        return {"x": tree_map(_z, state.x, state.prev, state.g, state.g_prev)}

    def query(state: NIDSState, mixed: dict[str, Tree]) -> tuple[Params, tuple[Any, ...]]:
        x = tree_map(lambda z, wz: 0.5 * (z + wz), send(state)["x"], mixed["x"])
        return x, (x, state)

    def update(pending: tuple[Any, ...], g: Params) -> NIDSState:
        x, state = pending
        return NIDSState(x, None if state.g is None else state.x, g, state.g)

    return Algorithm(NIDSState, send, query, update)


class PushState(NamedTuple):
    x: Params
    u: Params
    v: torch.Tensor
    t: int = 0


def _ratio(mixed: dict[str, Tree]) -> Params:
    """x = u / v, the pushed parameters over the pushed weight."""
    v = mixed["v"]
    return tree_map(lambda u: u / v, mixed["u"])


def _ones_like_scalar(x0: Params) -> torch.Tensor:
    first = next(iter(x0.values()))
    return torch.ones((), dtype=first.dtype, device=first.device)


def subgradient_push(stepsize: float, power: float = _PUSH.power) -> Algorithm:
    """Subgradient-push (Nedić, Olshevsky 2015) with column-stochastic A and a(t) = a / (t+1)^p.

    w <- A u;  v <- A v (v(0) = 1);  x = w / v;  u <- w - a(t) grad f_i(x);
    the default ``power`` is ``SubgradientPushTunables``'.
    """
    def init(x0: Params) -> PushState:
        return PushState(x0, x0, _ones_like_scalar(x0))

    def query(state: PushState, mixed: dict[str, Tree]) -> tuple[Params, tuple[Any, ...]]:
        x = _ratio(mixed)
        return x, (x, mixed, state.t)

    def update(pending: tuple[Any, ...], g: Params) -> PushState:
        x, mixed, t = pending
        u = _step(mixed["u"], stepsize / (t + 1) ** power, g)
        return PushState(x, u, mixed["v"], t + 1)

    return Algorithm(init, lambda s: {"u": s.u, "v": s.v}, query, update, push=True)


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

    def query(state: PushDIGingState, mixed: dict[str, Tree]
              ) -> tuple[Params, tuple[Any, ...]]:
        x = _ratio(mixed)
        return x, (x, mixed, state.g)

    def update(pending: tuple[Any, ...], g: Params) -> PushDIGingState:
        x, mixed, g_old = pending
        return PushDIGingState(x, mixed["u"], mixed["v"], _tracked(mixed["y"], g, g_old), g)

    return Algorithm(init, send, query, update, push=True)
