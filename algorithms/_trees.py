"""Trees of values: a leaf (number, array or tensor), or a name-keyed dict of trees.

Torch-free, so that consensus never imports torch: a tensor leaf implies that torch
is imported already, and ``weighted_sum`` finds it in ``sys.modules``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

Tree = Any
"""A tensor (or number), or a ``dict[str, Tree]``."""


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
    torch = sys.modules.get("torch")
    if torch is None or not all(isinstance(leaf, torch.Tensor) for leaf in mine):
        return tree_map(lambda a, *bs: sum((b * w for b, (_, w) in zip(bs, others, strict=True)),
                                           a * own_weight), own, *(t for t, _ in others))
    total = torch._foreach_mul(mine, own_weight)
    for tree, weight in others:
        torch._foreach_add_(total, leaves(tree), alpha=weight)
    return rebuild(own, iter(total))
