"""Mixing: how a node combines its payload with its in-neighbours', as its own piece.

A ``Mixing`` is a pair of functions the loop composes with any algorithm:

    payload = share(sent)              what goes on the wire (None: ``sent`` itself)
    mixed   = mix(payload, received)   after the exchange, ``received`` by sender

Row mixing is the pull form x <- W x, weights from the network config. Push mixing is
the column-stochastic form for directed graphs: a node with out-degree d keeps a
share 1/(d+1) of its payload and sends one such share to each out-neighbour, then
adds up what came in; every node knows its out-degree, so the mixing matrix
(A[j, i] = 1/(d_i + 1)) is column stochastic without any node knowing the graph.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from ._trees import Tree, tree_map, weighted_sum


class Mixing(NamedTuple):
    """How payloads are shared and mixed.

    Attributes:
        share: the payload to send from what the algorithm sends (None: unchanged).
        mix: the mixed payload from this node's own payload and the received ones.
    """

    share: Callable[[Tree], Tree] | None
    mix: Callable[[Tree, Mapping[str, Tree]], Tree]


def row_mixing(self_weight: float, weighted: Sequence[tuple[str, float]]) -> Mixing:
    """x <- w_ii x + sum_j w_ij x_j, in the order of ``weighted`` (in-neighbour, weight).

    Dicts of tensors go through ``weighted_sum``; a bare value (a number, array or
    tensor: the consensus case) through its own ``*`` and ``+``, the hot path.
    """
    pairs = tuple(weighted)

    def mix(own: Tree, received: Mapping[str, Tree]) -> Tree:
        if type(own) is dict:
            return weighted_sum(own, self_weight, [(received[node], w) for node, w in pairs])
        mixed = own * self_weight
        for node, node_weight in pairs:
            mixed = mixed + received[node] * node_weight
        return mixed

    return Mixing(None, mix)


def push_share(value: Tree, out_degree: int) -> Tree:
    """The share of ``value`` a node keeps and sends to each of its out-neighbours."""
    scale = 1.0 / (out_degree + 1)
    return tree_map(lambda leaf: leaf * scale, value)


def push_mix(share: Tree, received: Mapping[str, Tree], senders: Sequence[str]) -> Tree:
    """The node's own share plus every in-neighbour's share, added in ``senders`` order."""
    return weighted_sum(share, 1.0, [(received[sender], 1.0) for sender in senders])


def push_mixing(out_degree: int, senders: Sequence[str]) -> Mixing:
    """Column-stochastic mixing: shares of 1/(out_degree + 1), added up from ``senders``."""
    order = list(senders)

    def mix(own: Tree, received: Mapping[str, Tree]) -> Tree:
        return push_mix(own, received, order)

    return Mixing(lambda value: push_share(value, out_degree), mix)


def sending(send: Callable[[Any], Tree] | None, mixing: Mixing
            ) -> Callable[[Any], Tree] | None:
    """``send`` followed by the mixing's ``share``; None if both are None (the state
    itself is sent)."""
    share = mixing.share
    if share is None or send is None:
        return share or send
    return lambda state: share(send(state))
