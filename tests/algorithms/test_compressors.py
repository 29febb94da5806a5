"""The compressors: what each keeps, QSGD's unbiasedness, error feedback, bad specs."""

from __future__ import annotations

import pytest
import torch

from peerflow.algorithms import (
    decompress,
    error_feedback,
    parse_compress_spec,
    parse_compressor,
)
from peerflow.transport import QuantizedTensor, SparseTensor

X = torch.tensor([0.5, -3.0, 0.1, 2.0, -0.2, 1.0, 0.0, -4.0, 0.3, 0.05], dtype=torch.float64)


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_top_k_keeps_the_k_entries_of_largest_magnitude() -> None:
    sent = parse_compressor("top-k:0.3").compress(X.reshape(2, 5), _generator())
    assert type(sent) is SparseTensor and sent.shape == (2, 5)
    assert sorted(sent.indices.tolist()) == [1, 3, 7]
    expected = torch.zeros(10, dtype=torch.float64)
    expected[[1, 3, 7]] = X[[1, 3, 7]]
    assert torch.equal(decompress(sent), expected.reshape(2, 5))


def test_top_k_keeps_at_least_one_entry() -> None:
    sent = parse_compressor("top-k:0.0001").compress(X, _generator())
    assert sent.indices.tolist() == [7]


def test_random_k_keeps_k_distinct_entries_drawn_from_the_generator() -> None:
    compress = parse_compressor("random-k:0.4").compress
    first = compress(X, _generator(1))
    again = compress(X, _generator(1))
    assert len(set(first.indices.tolist())) == 4
    assert torch.equal(first.indices, again.indices)
    assert torch.equal(first.values, X[first.indices])


def test_qsgd_is_unbiased() -> None:
    compress, generator = parse_compressor("qsgd:2").compress, _generator(3)
    draws = torch.stack([decompress(compress(X, generator)) for _ in range(20000)])
    assert type(compress(X, generator)) is QuantizedTensor
    # each entry's standard error is below ||x|| / (s sqrt(n)) = 5.4 / (2 * 141) < 0.02
    assert torch.allclose(draws.mean(dim=0), X, atol=0.08)
    assert draws.std(dim=0).max() > 0.1  # random, not the identity


def test_qsgd_levels_lie_within_s_and_their_signs_follow_x() -> None:
    sent = parse_compressor("qsgd:4").compress(X, _generator())
    assert sent.levels.abs().max() <= 4
    assert torch.all(sent.levels * X.sign() >= 0)


def test_qsgd_contraction_is_rescaled_by_tau() -> None:
    compressor = parse_compressor("qsgd:4")
    plain, scaled = (c(X, _generator(5)) for c in (compressor.compress, compressor.contraction))
    tau = 1 + min(10 / 16, 10**0.5 / 4)
    assert torch.equal(plain.levels, scaled.levels)
    assert torch.allclose(scaled.norm * tau, plain.norm)


def test_error_feedback_keeps_the_residual_and_adds_it_next_time() -> None:
    compress, generator = parse_compressor("top-k:0.1").compress, _generator()
    residual, total = None, torch.zeros_like(X)
    for _ in range(30):
        sent, residual = error_feedback(compress, {"w": X}, residual, generator)
        total += decompress(sent["w"])
    # nothing is lost, only delayed: what was sent plus what waits is all that came in
    assert torch.allclose(total + residual["w"], 30 * X, rtol=0, atol=1e-12)
    assert residual["w"].norm() < 10 * X.norm()  # bounded: every entry gets its turn


@pytest.mark.parametrize("spec, problem", [
    ("top-k", "expected one of none, top-k:FRACTION"),
    ("top-k:0", "fraction kept must be in (0, 1]"),
    ("random-k:1.5", "fraction kept must be in (0, 1]"),
    ("top-k:x", "could not convert"),
    ("qsgd:0.5", "levels must be an integer"),
    ("qsgd:0", "levels must be an integer"),
    ("gzip:9", "expected one of"),
])
def test_a_bad_spec_is_refused_with_the_problem_named(spec: str, problem: str) -> None:
    with pytest.raises(ValueError, match="compressor") as info:
        parse_compress_spec(spec)
    assert problem in str(info.value)


def test_none_is_the_identity() -> None:
    assert parse_compressor("none").compress(X, _generator()) is X
