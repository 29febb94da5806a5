"""A tiny run of the compression benchmark's code path (no figure is asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerflow.cli import _bench as bench_cli

bench_cli.load_benchmarks()
from benchmarks import compression  # noqa: E402  (found by load_benchmarks)


@pytest.mark.timeout(300)
def test_the_compression_benchmark_compares_bytes_to_a_target_loss(tmp_path: Path) -> None:
    result = compression.compare("two-moons", 20)
    dgd, choco = result["curves"]
    assert choco["bytes_per_iteration"] < dgd["bytes_per_iteration"] / 5
    assert len(dgd["loss"]) == len(dgd["bytes_per_node"]) == 20
    assert result["target_loss"] >= max(dgd["loss"][-1], choco["loss"][-1])
    assert "| two-moons | 20 |" in compression.markdown([result])
    for path in (compression.plot(result, tmp_path), compression.plot_iterations(result, tmp_path)):
        assert path.read_bytes()[:4] == b"\x89PNG"
