"""Batched execution of the step functions: every node's state stacked along dim 0.

The actor engine runs one ``Algorithm`` per node; here the same pure functions run
once for all nodes. A node's state is a tree (dicts, tuples, NamedTuples) of tensors
and constants; stacked, each tensor leaf gains a leading node dimension and each
constant (an iteration count, a not-yet-set ``None``) must be the same at every node.
``vectorized`` maps a per-node function over such stacks with ``torch.func.vmap``, so
the step functions are the very ones the actors run.

Mixing is a matrix product per iteration: ``schedule(t)`` gives W(t) (row form: row i
holds node i's in-weights) or A(t) (push form: column i holds node i's shares), a
``scipy.sparse`` matrix in the node order; a constant network's schedule returns one
matrix for every t, a time-varying one any matrix it likes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch.func import vmap

MatrixAt = Callable[[int], sp.sparray]
"""W(t) (or A(t)) for iteration t."""
"""The mixing matrix of iteration t (a ``scipy.sparse`` array in the node order)."""


def leaves_of(tree: Any) -> list[Any]:
    """The leaves of a tree of dicts, tuples and lists, depth first."""
    if isinstance(tree, dict):
        return [leaf for value in tree.values() for leaf in leaves_of(value)]
    if isinstance(tree, tuple | list):
        return [leaf for value in tree for leaf in leaves_of(value)]
    return [tree]


def shaped_like(tree: Any, values: Iterator[Any]) -> Any:
    """A tree shaped like ``tree`` (NamedTuples kept) with leaves taken from ``values``."""
    if isinstance(tree, dict):
        return {key: shaped_like(value, values) for key, value in tree.items()}
    if isinstance(tree, list):
        return [shaped_like(value, values) for value in tree]
    if isinstance(tree, tuple):
        items = [shaped_like(value, values) for value in tree]
        return type(tree)(*items) if hasattr(tree, "_fields") else tuple(items)
    return next(values)


def stack(trees: Sequence[Any]) -> Any:
    """One tree whose tensor leaves stack the nodes' along a new dim 0.

    Raises:
        ValueError: the trees differ in shape, or in a leaf that is not a tensor
            (such leaves must be the same at every node).
    """
    columns = zip(*(leaves_of(tree) for tree in trees), strict=True)
    return shaped_like(trees[0], (_stacked(column) for column in columns))


def _stacked(column: tuple[Any, ...]) -> Any:
    first = column[0]
    if isinstance(first, torch.Tensor):
        return torch.stack(column)
    if any(leaf != first for leaf in column):
        raise ValueError(f"nodes' states differ in a leaf that cannot be stacked: {first!r}")
    return first


def unstack(tree: Any, node: int) -> Any:
    """Node ``node``'s tree from a stacked one."""
    values = (leaf[node] if isinstance(leaf, torch.Tensor) else leaf for leaf in leaves_of(tree))
    return shaped_like(tree, values)


def vectorized(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` over one node's trees, applied to stacked trees (``torch.func.vmap``).

    Tensor leaves are mapped over dim 0; other leaves pass as they are, and the ones
    ``fn`` returns are taken from its (one, traced) call, so they must not depend on
    the node.
    """
    def call(*trees: Any) -> Any:
        flat = leaves_of(trees)
        tensors = [leaf for leaf in flat if isinstance(leaf, torch.Tensor)]
        kept: list[Any] = []

        def one_node(*values: torch.Tensor) -> list[torch.Tensor]:
            given = iter(values)
            args = shaped_like(trees, (next(given) if isinstance(leaf, torch.Tensor) else leaf
                                       for leaf in flat))
            kept[:] = [fn(*args)]
            return [leaf for leaf in leaves_of(kept[0]) if isinstance(leaf, torch.Tensor)]

        outputs = iter(vmap(one_node)(*tensors))
        return shaped_like(kept[0], (next(outputs) if isinstance(leaf, torch.Tensor) else leaf
                                     for leaf in leaves_of(kept[0])))

    return call


class Mixer:
    """Mixes stacked trees with a schedule's matrix, kept as a torch sparse tensor per dtype.

    All tensor leaves of one dtype go through one sparse product (a (nodes, total)
    matrix of the leaves side by side), not one per leaf.
    """

    def __init__(self, schedule: MatrixAt) -> None:
        self.schedule = schedule
        self._matrix: Any = None
        self._torch: dict[torch.dtype, torch.Tensor] = {}

    def __call__(self, t: int, tree: Any) -> Any:
        """W(t) applied to every tensor leaf of ``tree`` (stacked along dim 0)."""
        flat = leaves_of(tree)
        mixed: dict[int, torch.Tensor] = {}
        for dtype in {leaf.dtype for leaf in flat if isinstance(leaf, torch.Tensor)}:
            group = [k for k, leaf in enumerate(flat)
                     if isinstance(leaf, torch.Tensor) and leaf.dtype == dtype]
            sides = [flat[k].reshape(len(flat[k]), -1) for k in group]
            product = self.matrix(t, dtype) @ torch.cat(sides, dim=1)
            parts = product.split([side.shape[1] for side in sides], dim=1)
            mixed.update({k: part.reshape(flat[k].shape) for k, part in zip(group, parts,
                                                                            strict=True)})
        return shaped_like(tree, (mixed.get(k, leaf) for k, leaf in enumerate(flat)))

    def matrix(self, t: int, dtype: torch.dtype) -> torch.Tensor:
        """W(t) as a torch sparse (COO) tensor of ``dtype`` (converted once per new W)."""
        matrix = self.schedule(t)
        if matrix is not self._matrix:
            self._matrix, self._torch = matrix, {}
        if dtype not in self._torch:
            csr = sp.csr_array(matrix)
            coo = csr.tocoo()
            self._torch[dtype] = torch.sparse_coo_tensor(
                torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64)),
                torch.from_numpy(coo.data).to(dtype), size=coo.shape,
                check_invariants=False).coalesce()
        return self._torch[dtype]
