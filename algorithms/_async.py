"""Asynchronous push-sum and gradient-push, robust to delays and lost messages.

Each node holds mass (x, w), w(0) = 1, and its estimate is x / w. When it wakes it
adds what its in-neighbours pushed since its last read, optionally takes a gradient
step at its estimate (gradient-push), then, on its first tick and whenever something
came in, keeps a share 1/(d+1) of its mass and pushes one share to each of its d
out-neighbours (a node that pushed with nothing coming in would shrink w towards 0,
and the precision of x / w with it). Shares travel as running sums
(Hadjicostis et al., robust push-sum): a node sends the total it ever pushed, and the
receiver adds the difference to the total it took before. A lost or overtaken
message costs nothing — the next one carries its mass — so the mass of the network
(the nodes' plus what is on the way: ``sent - taken`` per link) stays exactly what
it was, under any delay, loss or wake order. Pure step functions, optax style.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ._trees import Tree, tree_map


class PushSumState(NamedTuple):
    """A node's robust push-sum state.

    Attributes:
        x: the value mass it holds.
        w: the weight mass it holds; the estimate is x / w.
        sent: [x, w] it ever pushed to each out-neighbour (one running sum for all).
        taken: [x, w] of each in-neighbour's running sum it has added, by sender.
    """

    x: Tree
    w: float
    sent: list[Any]
    taken: dict[str, list[Any]]


def push_sum_init(x0: Tree) -> PushSumState:
    """Mass (x0, 1), nothing pushed or taken yet."""
    return PushSumState(x0, 1.0, [_zeros(x0), 0.0], {})


def push_sum_absorb(state: PushSumState, news: Mapping[str, list[Any]]) -> PushSumState:
    """Add each sender's new running sum minus the one taken before, in sender order."""
    x, w, taken = state.x, state.w, dict(state.taken)
    for sender in sorted(news):
        total = news[sender]
        before = taken.get(sender) or [_zeros(total[0]), 0.0]
        x = tree_map(lambda a, new, old: a + (new - old), x, total[0], before[0])
        w = w + (total[1] - before[1])
        taken[sender] = list(total)
    return PushSumState(x, w, state.sent, taken)


def push_sum_share(state: PushSumState, out_degree: int) -> tuple[PushSumState, list[Any]]:
    """Push a share 1/(d+1) of the mass to each out-neighbour; the new running sum.

    What each out-neighbour will add is the increment of the running sum as computed,
    and the node keeps its mass minus d such increments, so no rounding creates mass.
    """
    if out_degree == 0:
        return state, state.sent
    scale = 1.0 / (out_degree + 1)
    sent_x, sent_w = state.sent
    new_x = tree_map(lambda s, a: s + a * scale, sent_x, state.x)
    new_w = sent_w + state.w * scale
    x = tree_map(lambda a, new, old: a - out_degree * (new - old), state.x, new_x, sent_x)
    w = state.w - out_degree * (new_w - sent_w)
    return PushSumState(x, w, [new_x, new_w], state.taken), [new_x, new_w]


def push_sum_estimate(state: PushSumState) -> Tree:
    """x / w."""
    return tree_map(lambda a: a / state.w, state.x)


def gradient_push_step(state: PushSumState, stepsize: float, gradient: Tree) -> PushSumState:
    """x <- x - a * w * grad f_i(x / w): the estimate x / w moves by -a * gradient.

    Gradient-push (Nedic & Olshevsky) subtracts a * gradient from x, with w near 1 as
    every node pushes once per round. Asynchronously a node's w may shrink or grow
    with its pace against its neighbours'; scaling by w keeps its step a."""
    w = state.w
    return state._replace(x=tree_map(lambda a, g: a - (stepsize * w) * g, state.x, gradient))


def in_flight(states: Mapping[str, PushSumState], out_neighbors: Mapping[str, list[str]]
              ) -> tuple[Tree, float]:
    """The mass on the way over every link: what senders pushed minus what receivers took."""
    x: Tree = 0.0
    w = 0.0
    for sender, recipients in out_neighbors.items():
        sent_x, sent_w = states[sender].sent
        for recipient in recipients:
            taken = states[recipient].taken.get(sender) or [0.0, 0.0]
            x, w = x + (sent_x - taken[0]), w + (sent_w - taken[1])
    return x, w


def _zeros(tree: Tree) -> Tree:
    return tree_map(lambda a: a * 0.0, tree)
