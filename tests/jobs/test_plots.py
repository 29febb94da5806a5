"""What a person sees on a run's plots, at 6 and at 50 nodes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from peerflow.jobs import plot_lines


def curves(n: int, length: int = 30) -> dict[str, np.ndarray]:
    return {f"site-{i + 1}": (i + 1) / n * 0.8 ** np.arange(length) for i in range(n)}


def legend_labels(axes) -> list[str]:
    return [text.get_text() for text in axes.get_legend().get_texts()]


def test_a_few_nodes_get_a_line_each_in_distinct_colours_and_a_legend_beside(
        tmp_path: Path) -> None:
    axes = plot_lines(tmp_path / "p.png", curves(6), title="t", ylabel="y", log=True,
                      references={"bound": 0.9 ** np.arange(30)})
    assert legend_labels(axes) == [f"site-{i}" for i in range(1, 7)] + ["bound"]
    colours = [line.get_color() for line in axes.get_lines()[:6]]
    assert len(set(colours)) == 6
    assert axes.get_lines()[-1].get_linestyle() == "--"  # the bound, dashed
    assert axes.get_legend().get_bbox_to_anchor().x0 > axes.bbox.x1 - 1  # outside the plot
    assert (tmp_path / "p.png").stat().st_size > 0


def test_many_nodes_are_a_spread_with_a_countable_legend(tmp_path: Path) -> None:
    axes = plot_lines(tmp_path / "p.png", curves(50), title="t", ylabel="y", log=True,
                      references={"bound": 0.9 ** np.arange(30)})
    labels = legend_labels(axes)
    assert labels[:3] == ["all 50: min to max", "10th to 90th percentile", "median"]
    assert labels[3:] == ["site-1", "site-2", "site-3", "bound"]
    assert len(axes.collections) == 2  # the two bands


def test_a_run_with_nothing_to_draw_writes_no_plot(tmp_path: Path) -> None:
    assert plot_lines(tmp_path / "p.png", {"site-1": [1.0], "site-2": [0.5]}, title="t",
                      ylabel="y") is None
    assert not (tmp_path / "p.png").exists()


def test_a_summary_says_what_made_it_and_its_units(tmp_path: Path) -> None:
    import json
    import sys

    import peerflow
    from peerflow.actors import Config, RunResult
    from peerflow.algorithms import metropolis_hastings, ring
    from peerflow.jobs import write_summary

    config = Config(metropolis_hastings(ring(3)), {"iterations": 2})
    write_summary(tmp_path, "consensus", RunResult("completed"), config, metrics={"a": 1.0})
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["algorithm"] == "consensus" and summary["metrics"] == {"a": 1.0}
    run = summary["run"]
    assert run["peerflow"] == peerflow.__version__
    assert run["python"] == ".".join(map(str, sys.version_info[:3]))
    assert run["units"]["timings"] == "seconds" and run["command"] and run["finished_at"]
