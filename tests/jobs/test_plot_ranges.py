"""What a person sees on long runs' plots: the informative range, told apart lines,
bounds dashed beside their curves, epochs with their iterations."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from peerflow.jobs import epoch_axis, figure, loss_plots, plot_lines, push_sum_plots
from peerflow.jobs._learning_plots import learning_fields


def floored_errors(nodes: int, iterations: int) -> dict[str, np.ndarray]:
    """Errors that reach double precision's floor near iteration 100, then wiggle there."""
    rng = np.random.default_rng(0)
    t = np.arange(iterations + 1)
    return {f"site-{i + 1}": np.maximum((i + 1) / nodes * 0.7 ** t,
                                        rng.choice([1e-17, 5.5e-17, 1.1e-16], t.size))
            for i in range(nodes)}


def legend_labels(axes) -> list[str]:
    return [text.get_text() for text in axes.get_legend().get_texts()]


def test_a_run_of_20000_iterations_is_shown_up_to_where_its_error_hits_the_floor(
        tmp_path: Path) -> None:
    bound = {"bound": np.maximum(0.8 ** np.arange(20_001), 1e-17)}
    axes = plot_lines(tmp_path / "e.png", floored_errors(6, 20_000), title="consensus error",
                      ylabel="error", log=True, references=bound)
    assert axes.get_yscale() == "log"
    low, high = axes.get_xlim()
    assert 100 < high < 300  # the bound reaches 1e-14 at 145; not 20,000
    assert "of 20,000" in axes.get_title() and "flat after" in axes.get_title()
    assert max(len(line.get_xdata()) for line in axes.get_lines()) < 300


def test_a_curve_still_moving_at_the_end_is_shown_whole(tmp_path: Path) -> None:
    t = np.arange(1001)
    axes = plot_lines(tmp_path / "l.png", {"dgd": 1 / (t + 1), "gt": 2 / (t + 1)},
                      title="loss", ylabel="loss")
    assert axes.get_xlim()[1] >= 1000 and axes.get_title() == "loss"


def test_a_flat_value_plot_is_cut_on_a_linear_scale_too(tmp_path: Path) -> None:
    t = np.arange(20_001)
    values = {f"site-{i}": 0.45 + (i - 2.5) / 5 * 0.5 ** t for i in range(6)}
    axes = plot_lines(tmp_path / "v.png", values, title="values", ylabel="value")
    assert axes.get_xlim()[1] < 50 and "of 20,000" in axes.get_title()


def test_a_run_that_diverges_is_never_cut(tmp_path: Path) -> None:
    curve = np.concatenate([np.zeros(900), np.full(100, np.nan)])
    axes = plot_lines(tmp_path / "d.png", {"dgd": curve}, title="t", ylabel="y")
    assert len(axes.get_lines()[0].get_xdata()) == 1000 and axes.get_title() == "t"


def test_lines_on_top_of_each_other_are_named_and_keep_distinct_markers(
        tmp_path: Path) -> None:
    t = np.arange(101)
    same = 0.68 - 0.001 * t
    curves = {"dgd": same, "gt": same + 1e-4, "gtadam": 0.68 * 0.5 ** t, "extra": same,
              "subgradient-push": same - 1e-4, "push-diging": same}
    axes = plot_lines(tmp_path / "c.png", curves, title="loss", ylabel="loss")
    assert legend_labels(axes) == ["dgd", "gt (overlaps dgd)", "gtadam", "extra (overlaps dgd)",
                                   "subgradient-push (overlaps dgd)", "push-diging (overlaps dgd)"]
    lines = axes.get_lines()
    assert len({line.get_marker() for line in lines}) == 6
    assert {line.get_linestyle() for line in lines} == {"-"}  # measured curves solid
    assert len({str(line.get_markevery()) for line in lines}) == 6  # staggered markers
    assert {line.get_fillstyle() for line in lines} == {"none"}  # hollow: overlaps show


def test_a_bound_named_after_its_curve_is_dashed_in_its_colour(tmp_path: Path) -> None:
    t = np.arange(60)
    axes = plot_lines(tmp_path / "b.png", {"ring": 0.9 ** t, "grid": 0.8 ** t}, title="t",
                      ylabel="y", log=True,
                      references={"ring bound": 0.95 ** t, "grid bound": 0.85 ** t})
    ring, grid, ring_bound, grid_bound = axes.get_lines()
    assert ring.get_linestyle() == grid.get_linestyle() == "-"
    assert ring_bound.get_linestyle() == grid_bound.get_linestyle() == "--"
    assert ring_bound.get_color() == ring.get_color() != grid_bound.get_color()
    assert grid_bound.get_color() == grid.get_color()


def test_a_log_axis_under_a_decade_labels_its_ticks_with_plain_numbers(tmp_path: Path) -> None:
    with figure(tmp_path / "p.png", "t", "nodes", "us", logx=True, logy=True) as axes:
        axes.plot([6, 7, 8, 9], [4.0, 6.0, 8.0, 12.0])
    assert axes.xaxis.get_minor_formatter()(6, 0) == "6"
    assert axes.yaxis.get_minor_formatter()(5, 0) == "5"  # 4 to 12: under one decade


def test_epochs_say_how_many_iterations_make_one() -> None:
    assert epoch_axis([10] * 6, 25) == ("epoch (10 iterations each)", [0.0, 1.0, 2.0, 2.5])
    assert epoch_axis([10] * 6, 30) == ("epoch (10 iterations each)", [0.0, 1.0, 2.0, 3.0])
    assert epoch_axis([1] * 6, 30) == ("iteration", None)
    assert epoch_axis([8, 10], 30) == ("epoch (8 to 10 iterations, by node)", None)
    assert epoch_axis([None, 10], 30) == ("epoch", None)


def test_learning_loss_plots_are_drawn_against_epochs(tmp_path: Path) -> None:
    node = SimpleNamespace(train_dataloader=[0] * 8, on_step=None, config=None)
    fields = learning_fields({"site-1": node, "site-2": node})
    assert fields == {"epoch_lengths": {"site-1": 8, "site-2": 8}, "distance_to_optimum": {}}
    losses = {"train": [1.0, 0.5, 0.4, 0.3], "test": [1.0, 0.6, 0.5, 0.4]}
    plots = loss_plots("gt on blobs", {kind: dict.fromkeys(("site-1", "site-2"), series)
                                       for kind, series in losses.items()},
                       fields["epoch_lengths"].values(), 20)
    assert set(plots) == {"train_loss.png", "test_loss.png"}
    axes = plot_lines(tmp_path / "train.png", **plots["train_loss.png"])
    assert axes.get_xlabel() == "epoch (8 iterations each)"
    assert list(axes.get_lines()[0].get_xdata()) == [0.0, 1.0, 2.0, 2.5]


def test_push_sum_gets_its_error_on_a_log_scale(tmp_path: Path) -> None:
    nodes = {f"site-{i}": SimpleNamespace(initial_value=float(i), value_history=[
        float(i), *(1.5 + (i - 1.5) * 0.5 ** np.arange(1, 40))]) for i in range(4)}
    plots = push_sum_plots({node: ex.value_history for node, ex in nodes.items()}, 1.5)
    axes = plot_lines(tmp_path / "e.png", **plots["push_sum_error.png"])
    assert axes.get_yscale() == "log" and axes.get_ylabel() == "|x_i - average|"
    assert len(legend_labels(axes)) == 4
