"""Line plots that read the same at 6, 50 and 10,000 nodes.

Up to ``EACH_UP_TO`` series get a line each, in distinct colours, with the legend beside
the axes (never over the early curves). More are drawn as their spread: the band from
min to max and from the 10th to the 90th percentile, the median, and the first
``HIGHLIGHTED`` series as lines, so the legend stays short and countable. Reference
curves (a theoretical bound) are dashed black and always named.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

EACH_UP_TO = 10
HIGHLIGHTED = 3


def plot_lines(path: Path, series: Mapping[str, Sequence[float]], *, title: str, ylabel: str,
               xlabel: str = "iteration", log: bool = False,
               references: Mapping[str, Sequence[float]] | None = None) -> Any:
    """Plot each series against its index into a PNG at ``path``.

    Returns:
        The (closed) axes, or None, writing nothing, when no curve has two points
        (a run of 0 iterations, or aborted before its first).
    """
    references = references or {}
    if not any(len(values) > 1 for values in [*series.values(), *references.values()]):
        return None
    with figure(path, title, xlabel, ylabel, logy=log, size=(9, 5), legend_beside=True) as axes:
        (_each if len(series) <= EACH_UP_TO else _spread)(axes, series)
        for name, values in references.items():
            axes.plot(np.arange(len(values)), np.asarray(values, dtype=float), "k--", lw=1.3,
                      label=name)
    return axes


@contextmanager
def figure(path: Path, title: str, xlabel: str, ylabel: str, *, logx: bool = False,
           logy: bool = False, from_zero: bool = False,
           size: tuple[float, float] = (8, 5), legend_beside: bool = False) -> Iterator[Any]:
    """Yield the axes of a new figure; on exit label it and save it to ``path``.

    Log axes are labelled with plain numbers (10, 100, 1000, not 6x10^0);
    ``from_zero`` starts the y axis at 0, so a flat line does not look like a jump;
    ``legend_beside`` puts the legend right of the axes, off the curves.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig, axes = plt.subplots(figsize=size)
    yield axes
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    for log, axis, scale in ((logx, axes.xaxis, axes.set_xscale),
                             (logy, axes.yaxis, axes.set_yscale)):
        if log:
            scale("log")
            axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            axis.set_minor_formatter(NullFormatter())
    if from_zero:
        axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        beside = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)} if legend_beside else {}
        axes.legend(fontsize="small", **beside)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _each(axes: Any, series: Mapping[str, Sequence[float]]) -> None:
    from matplotlib import colormaps

    colours = colormaps["tab10"]
    for i, (name, values) in enumerate(series.items()):
        axes.plot(np.arange(len(values)), np.asarray(values, dtype=float), lw=1.2,
                  color=colours(i), label=name)


def _spread(axes: Any, series: Mapping[str, Sequence[float]]) -> None:
    length = min(len(values) for values in series.values())
    # rows: every series' every entry (a vector-valued series counts each of its entries)
    stacked = np.vstack([np.asarray(values[:length], dtype=float).reshape(length, -1).T
                         for values in series.values()])
    x = np.arange(length)
    low, p10, median, p90, high = np.nanpercentile(stacked, [0, 10, 50, 90, 100], axis=0)
    axes.fill_between(x, low, high, color="tab:blue", alpha=0.15,
                      label=f"all {len(series)}: min to max")
    axes.fill_between(x, p10, p90, color="tab:blue", alpha=0.3, label="10th to 90th percentile")
    axes.plot(x, median, color="tab:blue", lw=1.5, label="median")
    for colour, (name, values) in zip(("tab:orange", "tab:green", "tab:red"),
                                      list(series.items())[:HIGHLIGHTED], strict=False):
        axes.plot(x, np.asarray(values[:length], dtype=float), color=colour, lw=1, label=name)
