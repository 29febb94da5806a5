"""What a person sees on the benchmark plots: plain tick labels, memory from zero, bounds
dashed beside their solid curves; and one statement of the speed-up against NVFlare."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks._plots import figure, lines
from peerflow.jobs import plot_lines


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


def test_a_flat_memory_line_sits_inside_the_frame_and_its_growth_is_in_the_title(
        tmp_path: Path, monkeypatch) -> None:
    from benchmarks import _plots

    drawn = []
    real = _plots.lines
    monkeypatch.setattr(_plots, "lines", lambda ax, series: drawn.append(ax) or real(ax, series))
    _plots.flat_plot({"samples": [[0, 89.66], [10_000, 89.69], [20_000, 89.69]],
                      "growth_mb": 0.03}, tmp_path)
    low, high = drawn[0].get_ylim()
    assert low == 0 and high >= 1.1 * 89.69
    assert "+0.03 MB" in drawn[0].get_title()


def test_node_counts_within_a_decade_are_labelled_as_plain_numbers(tmp_path: Path) -> None:
    with figure(tmp_path / "n.png", "t", "nodes", "us", logx=True, logy=True) as ax:
        lines(ax, {"peerflow": ([6, 8], [3.0, 4.0]), "floor (uvloop)": ([6, 8], [1.0, 1.5])})
    labels = [ax.xaxis.get_minor_formatter()(n, 0) for n in (6, 7, 8)]
    assert labels == ["6", "7", "8"]


def test_consensus_bounds_are_dashed_in_the_colour_of_their_solid_curve(
        tmp_path: Path, monkeypatch) -> None:
    from benchmarks import consensus

    drawn = []
    monkeypatch.setattr(consensus, "plot_lines",
                        lambda *a, **k: drawn.append(plot_lines(*a, **k)))
    consensus.suite(["ring", "complete"], 8, 40, tmp_path)
    lines_by_label = {line.get_label(): line for line in drawn[0].get_lines()}
    for topology in ("ring", "complete"):
        curve, bound = lines_by_label[topology], lines_by_label[f"{topology} bound"]
        assert curve.get_linestyle() == "-" and bound.get_linestyle() == "--"
        assert curve.get_color() == bound.get_color()


def test_the_convergence_report_leaves_the_speed_up_to_the_nvflare_section() -> None:
    from benchmarks import convergence

    gt = {"algorithm": "gt", "train_loss_start": 0.68, "train_loss": 0.58, "test_loss": 0.58,
          "test_accuracy": 0.83, "consensus_max_abs": 1e-3, "wall_time": 2.3}
    text = convergence.report({"least-squares": {}, "blobs": {"rows": [gt]},
                               "two-moons": {"rows": [gt]}, "quick": True})
    assert "faster" not in text and "NVFlare section of `peerflow bench`" in text


@pytest.mark.timeout(120)
def test_the_readme_consensus_figure_is_made_by_a_real_peerflow_run(tmp_path: Path) -> None:
    from benchmarks import figures

    (written,) = figures.make(tmp_path, ["consensus-16-nodes.png"])
    assert written == tmp_path / "consensus-16-nodes.png"
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
