"""Compression between an algorithm and the transport: top-k, random-k and QSGD.

A ``Compressor`` maps a tensor to what goes on the wire: a ``SparseTensor`` (indices
and values) for top-k and random-k, a ``QuantizedTensor`` (levels, signs, norm) for
QSGD, the tensor itself for "none"; the transport's codec carries each compactly.
``decompress`` gives the dense tensor back, on whichever side. ``error_feedback``
keeps what compression dropped and adds it to the next value (the residual), so
nothing is lost for good, only delayed.

Random compressors draw from the ``torch.Generator`` they are given: one per node,
seeded, so that runs repeat. Specs (``_compress_spec``) read as on the command line.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from peerflow.transport import QuantizedTensor, SparseTensor

from ._compress_spec import parse_compress_spec
from ._trees import Tree, tree_map

__all__ = ["Compressor", "compress_tree", "decompress", "decompress_tree",
           "error_feedback", "node_generator", "parse_compressor"]

Compress = Callable[[torch.Tensor, torch.Generator], Any]


class Compressor(NamedTuple):
    """One compression operator.

    Attributes:
        spec: its name as a spec (``top-k:0.01``).
        compress: ``compress(tensor, generator)``, what goes on the wire.
        contraction: a ``compress`` with E||C(x) - x||^2 <= (1 - delta) ||x||^2 for some
            delta > 0, as CHOCO needs: top-k and random-k as they are, QSGD rescaled.
    """

    spec: str
    compress: Compress
    contraction: Compress


def _kept(fraction: float, numel: int) -> int:
    return min(numel, max(1, math.ceil(fraction * numel)))


def _sparse(x: torch.Tensor, indices: torch.Tensor) -> SparseTensor:
    return SparseTensor(tuple(x.shape), indices, x.reshape(-1)[indices])


def top_k(fraction: float) -> Compressor:
    """Keep the ``ceil(fraction * numel)`` entries of largest magnitude (at least one)."""
    def compress(x: torch.Tensor, generator: torch.Generator) -> SparseTensor:
        k = _kept(fraction, x.numel())
        return _sparse(x, x.reshape(-1).abs().topk(k, sorted=False).indices)

    return Compressor(f"top-k:{fraction:g}", compress, compress)


def random_k(fraction: float) -> Compressor:
    """Keep ``ceil(fraction * numel)`` entries drawn uniformly without replacement;
    unscaled, so it is a contraction with delta = k / numel."""
    def compress(x: torch.Tensor, generator: torch.Generator) -> SparseTensor:
        k = _kept(fraction, x.numel())
        return _sparse(x, torch.randperm(x.numel(), generator=generator)[:k])

    return Compressor(f"random-k:{fraction:g}", compress, compress)


def qsgd(levels: int) -> Compressor:
    """QSGD (Alistarh et al. 2017) with ``levels`` levels s: entry k is
    ``||x|| sign(x_k) xi_k / s``, xi_k = floor(s |x_k| / ||x||) plus a Bernoulli bit of
    the remainder: unbiased. Its contraction divides by tau = 1 + min(d / s^2, sqrt(d) / s)
    (Koloskova, Stich, Jaggi 2019)."""
    def quantize(x: torch.Tensor, generator: torch.Generator, tau: float) -> QuantizedTensor:
        flat = x.reshape(-1)
        norm = flat.norm()
        scaled = flat.abs() / norm.clamp_min(torch.finfo(x.dtype).tiny) * levels
        floor = scaled.floor()
        up = torch.rand(flat.shape, generator=generator, dtype=x.dtype) < scaled - floor
        level = (floor + up.to(x.dtype)).to(torch.int32) * flat.sign().to(torch.int32)
        return QuantizedTensor(tuple(x.shape), norm / tau, level, levels)

    def compress(x: torch.Tensor, generator: torch.Generator) -> QuantizedTensor:
        return quantize(x, generator, 1.0)

    def contraction(x: torch.Tensor, generator: torch.Generator) -> QuantizedTensor:
        d = x.numel()
        return quantize(x, generator, 1 + min(d / levels**2, math.sqrt(d) / levels))

    return Compressor(f"qsgd:{levels}", compress, contraction)


def identity() -> Compressor:
    """No compression: the tensor itself."""
    def compress(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x

    return Compressor("none", compress, compress)


_FACTORIES: dict[str, Callable[[Any], Compressor]] = {
    "top-k": top_k, "random-k": random_k, "qsgd": qsgd}


def parse_compressor(spec: str) -> Compressor:
    """The compressor a spec names: ``none``, ``top-k:F``, ``random-k:F`` or ``qsgd:S``.

    Raises:
        ValueError: an unknown name, or a missing or bad parameter (the message shows
            the accepted forms).
    """
    name, parameter = parse_compress_spec(spec)
    return identity() if parameter is None else _FACTORIES[name](parameter)


def node_generator(node: str, seed: int = 0) -> torch.Generator:
    """A generator for ``node``'s random compressions, seeded by its name and ``seed``."""
    return torch.Generator().manual_seed(zlib.crc32(node.encode()) + seed)


def decompress(leaf: Any) -> Any:
    """The dense tensor a compressed leaf stands for (any other leaf as it is)."""
    if type(leaf) is SparseTensor:
        dense = leaf.values.new_zeros(math.prod(leaf.shape))
        return dense.index_copy(0, leaf.indices.to(torch.int64), leaf.values).reshape(leaf.shape)
    if type(leaf) is QuantizedTensor:
        scale = leaf.norm / leaf.s
        return (leaf.levels.to(scale.dtype) * scale).reshape(leaf.shape)
    return leaf


def compress_tree(compress: Compress, tree: Tree, generator: torch.Generator) -> Tree:
    """Every tensor of ``tree`` compressed, in key order (so draws repeat)."""
    return tree_map(lambda x: compress(x, generator), tree)


def decompress_tree(tree: Tree) -> Tree:
    """Every compressed leaf of ``tree`` dense again."""
    return tree_map(decompress, tree)


def error_feedback(compress: Compress, tree: Tree, residual: Tree | None,
                   generator: torch.Generator) -> tuple[Tree, Tree]:
    """Compress ``tree`` plus the residual of the last call; the new residual is what
    this compression dropped: (compressed, residual). None: no residual yet."""
    value = tree if residual is None else tree_map(torch.add, tree, residual)
    compressed = compress_tree(compress, value, generator)
    return compressed, tree_map(lambda v, c: v - decompress(c), value, compressed)
