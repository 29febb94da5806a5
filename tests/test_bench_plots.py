"""What a person sees on the benchmark plots: plain tick labels, memory from zero."""

from __future__ import annotations

from pathlib import Path

from benchmarks._plots import figure, lines


def test_log_axes_are_labelled_with_plain_numbers(tmp_path: Path) -> None:
    with figure(tmp_path / "p.png", "t", "nodes", "us", logx=True, logy=True) as ax:
        lines(ax, {"peerflow": ([6, 60, 600], [3.0, 4.0, 5.0])})
    assert ax.xaxis.get_major_formatter()(100, 0) == "100"
    assert ax.xaxis.get_minor_formatter()(6, 0) == ""
    assert ax.yaxis.get_major_formatter()(1, 0) == "1"
    assert (tmp_path / "p.png").stat().st_size > 0


def test_a_flat_memory_line_is_shown_from_zero(tmp_path: Path) -> None:
    with figure(tmp_path / "m.png", "t", "iterations", "MB", from_zero=True) as ax:
        lines(ax, {"peerflow": ([0, 1000, 2000], [65.86, 65.9, 65.94])})
    low, high = ax.get_ylim()
    assert low == 0 and high > 65.94
