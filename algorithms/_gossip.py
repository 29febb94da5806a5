"""Randomized pairwise gossip (Boyd et al. 2006) over asynchronous messages.

A node that wakes with no offer open picks a neighbour and offers it its value; the
neighbour answers by moving half the difference, (x_j - offer) / 2, to it: both end
at the average and the sum is unchanged. Moves travel as running sums per link, as
in robust push-sum (``_async``): a message carries the total moved over the link so
far and the receiver adds the difference to what it took before, so the sum of the
network (the nodes' values plus the moves on the way: ``moved - taken`` per link)
stays exactly what it was under any delay, loss or order, and a lost message is made
up by the next one. Each message on a link carries the whole link state (the moved
total, the open offer, the last offer answered), so only the newest one matters.
Two nodes offering to each other at once would swap values: the smaller name's offer
wins. AD-PSGD (Lian et al. 2018) is this averaging with a local gradient step at
every wake (``gossip_gradient_step``). Pure step functions, optax style.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ._trees import Tree, tree_map

PATIENCE = 10
"""Wakes an open offer waits for its answer before the node may offer again."""


class GossipState(NamedTuple):
    """A node's pairwise-gossip state.

    Attributes:
        x: its value.
        moved: the running sum of what it moved to each neighbour, by name.
        taken: each neighbour's running sum of moves it has added, by name.
        answered: each neighbour's last offer it answered (offers count from 1).
        asked: the neighbour its open offer goes to (None: no offer open).
        offers: how many offers it made.
        waited: wakes since its open offer was made.
    """

    x: Tree
    moved: dict[str, Tree]
    taken: dict[str, Tree]
    answered: dict[str, int]
    asked: str | None = None
    offers: int = 0
    waited: int = 0


def gossip_init(x0: Tree) -> GossipState:
    """The value x0, nothing moved or taken, no offer open."""
    return GossipState(x0, {}, {}, {})


def gossip_absorb(state: GossipState, news: Mapping[str, Mapping[str, Any]]) -> GossipState:
    """Add each neighbour's new moves; close the open offer once it is answered."""
    x, taken, asked = state.x, dict(state.taken), state.asked
    for sender in sorted(news):
        message = news[sender]
        x = _plus_difference(x, message["moved"], taken.get(sender))
        taken[sender] = message["moved"]
        if asked == sender and message["answered"] >= state.offers:
            asked = None
    return state._replace(x=x, taken=taken, asked=asked)


def gossip_answer(state: GossipState, me: str, news: Mapping[str, Mapping[str, Any]]
                  ) -> GossipState:
    """Answer every new offer: move half the difference to its sender, in sender order."""
    for sender in sorted(news):
        message = news[sender]
        offer, number = message["offer"], message["offers"]
        if offer is None or number <= state.answered.get(sender, 0):
            continue
        if state.asked == sender:
            if me < sender:
                continue  # our offers crossed: ours wins, the sender answers it
            state = state._replace(asked=None)
        half = tree_map(lambda a, b: (a - b) / 2, state.x, offer)
        state = _move(state, sender, half)._replace(
            answered={**state.answered, sender: number})
    return state


def _move(state: GossipState, to: str, amount: Tree) -> GossipState:
    """Move ``amount`` to ``to``. The node loses the running sum's increment as
    computed, which is exactly what the receiver will add: rounding creates nothing."""
    old = state.moved.get(to)
    new = amount if old is None else tree_map(lambda s, a: s + a, old, amount)
    gain = _plus_difference(_zeros(new), new, old)
    return state._replace(x=tree_map(lambda a, g: a - g, state.x, gain),
                          moved={**state.moved, to: new})


def gossip_offer(state: GossipState, partner: str | None) -> GossipState:
    """Open an offer to ``partner`` if none is open (or the open one waited too long)."""
    if state.asked is not None and state.waited < PATIENCE:
        return state._replace(waited=state.waited + 1)
    if partner is None:
        return state._replace(asked=None, waited=0)
    return state._replace(asked=partner, offers=state.offers + 1, waited=0)


def gossip_messages(state: GossipState, neighbors: Sequence[str]) -> dict[str, dict[str, Any]]:
    """What goes to each neighbour: the link's moved total, the offer if it is to it."""
    nothing = _zeros(state.x)
    return {n: {"moved": state.moved.get(n, nothing), "answered": state.answered.get(n, 0),
                "offer": state.x if state.asked == n else None, "offers": state.offers}
            for n in neighbors}


def gossip_gradient_step(state: GossipState, stepsize: float, gradient: Tree) -> GossipState:
    """x <- x - a * grad f_i(x): AD-PSGD's local step."""
    return state._replace(x=tree_map(lambda a, g: a - stepsize * g, state.x, gradient))


def gossip_in_flight(states: Mapping[str, GossipState]) -> Tree:
    """The moves on the way over every link: what was moved minus what was taken."""
    total: Tree = 0.0
    for sender, state in states.items():
        for recipient, moved in state.moved.items():
            taken = states[recipient].taken.get(sender)
            total = total + (moved if taken is None else moved - taken)
    return total


def _plus_difference(x: Tree, new: Tree, old: Tree | None) -> Tree:
    """x + (new - old), old None counting as zero."""
    if old is None:
        return tree_map(lambda a, n: a + n, x, new)
    return tree_map(lambda a, n, o: a + (n - o), x, new, old)


def _zeros(tree: Tree) -> Tree:
    return tree_map(lambda a: a * 0.0, tree)
