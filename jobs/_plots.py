"""Line plots that read the same at 6, 50 and 10,000 nodes, and at 20 or 20,000 iterations.

Up to ``EACH_UP_TO`` series get a line each, in distinct colours and markers, with the
legend beside the axes (never over the early curves); a series that coincides with an
earlier one says so in its legend entry. More are drawn as their spread: the band from
min to max and from the 10th to the 90th percentile, the median, and the first
``HIGHLIGHTED`` series as lines, so the legend stays short and countable. Reference
curves (a theoretical bound) are dashed, in their series' colour when named after it
("ring bound" for "ring"), else black; measured curves are solid.

Once every curve has settled (reached double precision's floor, or its limit) the rest
of the run is flat: the x axis stops a little after that point, and the title says where
it stopped and how long the run was.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

EACH_UP_TO = 10
HIGHLIGHTED = 3
FLOOR = 1e-17
"""Errors below double precision are drawn at this floor on log plots."""
PRECISION = 1e-14
"""On a log scale, values below this fraction of a curve's peak are at double precision's
floor: their wiggles are rounding, not progress."""
SETTLED = 0.005
"""On a log scale a curve has settled once it stays within this fraction of its range of
its last value (under two pixels on a plot 400 pixels high)."""
SETTLED_LINEAR = 1e-6
"""On a linear scale, within this fraction: a curve still creeping (a loss going as 1/t)
is shown whole, one that reached its limit (to six digits) is not."""
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">")

Series = Mapping[str, Sequence[float]]


def plot_lines(path: Path, series: Series, *, title: str, ylabel: str,
               xlabel: str = "iteration", log: bool = False,
               references: Series | None = None, x: Sequence[float] | None = None) -> Any:
    """Plot each series against ``x`` (default: its index) into a PNG at ``path``.

    Args:
        series: one curve per name (a node, an algorithm), numbers or vectors per point.
        references: curves to compare against (a bound), dashed.
        x: the x value of each point (e.g. epochs, the last one partial), shared by all.

    Returns:
        The (closed) axes, or None, writing nothing, when no curve has two points
        (a run of 0 iterations, or aborted before its first).
    """
    references = references or {}
    curves = [values for values in [*series.values(), *references.values()] if len(values)]
    if not any(len(values) > 1 for values in curves):
        return None
    length = max(len(values) for values in curves)
    xs = np.arange(length, dtype=float) if x is None else np.asarray(x, dtype=float)
    if len(xs) < length:
        raise ValueError(f"x has {len(xs)} values for curves of up to {length} points")
    settled = max(settled_at(values, log) for values in curves)
    end = informative_end(settled, length)
    if end < length - 1:
        title += (f"\n(shown to {xlabel.split(' (')[0]} {_number(xs[end])} of "
                  f"{_number(xs[length - 1])}: every curve is flat after {_number(xs[settled])})")
        series = {name: values[:end + 1] for name, values in series.items()}
        references = {name: values[:end + 1] for name, values in references.items()}
    with figure(path, title, xlabel, ylabel, logy=log, size=(9, 5), legend_beside=True) as axes:
        from matplotlib.ticker import MaxNLocator

        axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # iterations, epochs
        colours = (_each if len(series) <= EACH_UP_TO else _spread)(axes, xs, series, log)
        for name, values in references.items():
            axes.plot(xs[:len(values)], np.asarray(values, dtype=float), ls="--", lw=1.3,
                      color=_owner_colour(name, colours), label=name)
    return axes


def settled_at(values: Sequence[float], log: bool = False) -> int:
    """The first index from which ``values`` stay within ``SETTLED_LINEAR`` (on a log
    scale ``SETTLED``) of their range of their last value (on a log scale, below
    ``PRECISION`` of the peak counts as equal);
    a curve that ends or passes through NaN or infinity has not settled before it."""
    y = np.asarray(values, dtype=float).reshape(len(values), -1)
    finite = np.isfinite(y)
    if not finite[-1].all():
        return len(y) - 1
    if log:
        y = np.log10(np.maximum(y, max(float(y[finite].max()), FLOOR) * PRECISION))
    filled = np.where(finite, y, y[-1])
    span = filled.max(axis=0) - filled.min(axis=0)
    tolerance = (SETTLED if log else SETTLED_LINEAR) * span
    moving = np.flatnonzero(~finite.all(axis=1)
                            | np.any(np.abs(filled - y[-1]) > tolerance, axis=1))
    return int(moving[-1]) + 1 if moving.size else 0


def informative_end(settled: int, length: int) -> int:
    """The last index worth showing of curves of ``length`` points that all settle at
    ``settled``: a quarter past it (at least 10 points), or the whole run when that
    is most of it."""
    end = max(math.ceil(settled * 1.25), settled + 10)
    return end if end < 0.8 * (length - 1) else length - 1


def error_series(histories: Mapping[str, Any], target: float) -> dict[str, np.ndarray]:
    """|x_i - target| per node and iteration, at least ``FLOOR`` (for a log plot)."""
    return {node: np.maximum(np.abs(np.asarray(h, dtype=float) - target), FLOOR)
            for node, h in histories.items()}


@contextmanager
def figure(path: Path, title: str, xlabel: str, ylabel: str, *, logx: bool = False,
           logy: bool = False, from_zero: bool = False,
           size: tuple[float, float] = (8, 5), legend_beside: bool = False) -> Iterator[Any]:
    """Yield the axes of a new figure; on exit label it and save it to ``path``.

    Log axes are labelled with plain numbers (10, 100, 1000, not 6x10^0), the ticks
    between powers of ten too when the axis spans under two decades;
    ``from_zero`` starts the y axis at 0, so a flat line does not look like a jump;
    ``legend_beside`` puts the legend right of the axes, off the curves. The PNG keeps
    the title and ``describe(axes)`` in its metadata.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(figsize=size)
    yield axes
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    for log, axis, scale, limits in ((logx, axes.xaxis, axes.set_xscale, axes.get_xlim),
                                     (logy, axes.yaxis, axes.set_yscale, axes.get_ylim)):
        if log:
            scale("log")
            _plain_log_ticks(axis, limits())
    if from_zero:  # and headroom, so a flat line is not drawn on the frame
        axes.set_ylim(0, max(axes.get_ylim()[1], 1.1 * axes.dataLim.y1))
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        beside = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)} if legend_beside else {}
        axes.legend(fontsize="small", **beside)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Title": title, "Description": describe(axes)})
    plt.close(fig)


def describe(axes: Any) -> str:
    """What a person reads off the axes, as JSON (kept in the PNG's Description): labels,
    scales, limits and the legend's entries."""
    return json.dumps({
        "xlabel": axes.get_xlabel(), "ylabel": axes.get_ylabel(),
        "xscale": axes.get_xscale(), "yscale": axes.get_yscale(),
        "xlim": [float(v) for v in axes.get_xlim()], "ylim": [float(v) for v in axes.get_ylim()],
        "legend": [text.get_text() for text in axes.get_legend().get_texts()]
        if axes.get_legend() else []})


def _plain_log_ticks(axis: Any, limits: tuple[float, float]) -> None:
    """Plain numbers at powers of ten; between them as well (all under one decade, 2 and
    5 under two) so that a short axis is never left with one label or none."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    low, high = sorted(limits)
    decades = math.log10(high / low) if low > 0 else math.inf
    if decades >= 2:
        axis.set_minor_formatter(NullFormatter())
        return
    shown = set(range(1, 10)) if decades < 1 else {2, 5}
    axis.set_minor_formatter(FuncFormatter(
        lambda value, _: f"{value:g}" if _leading_digit(value) in shown else ""))


def _number(value: float) -> str:
    """20,000 for an iteration, 2.5 for a partial epoch."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4g}"


def _leading_digit(value: float) -> int:
    return round(value / 10 ** math.floor(math.log10(value))) if value > 0 else 0


def _each(axes: Any, xs: np.ndarray, series: Series, log: bool) -> dict[str, Any]:
    """A solid line per series, distinct colours and hollow, staggered markers (so that
    curves drawn on top of each other still show), the coinciding ones named in the legend."""
    from matplotlib import colormaps

    colours, drawn = colormaps["tab10"], {}
    same = _coinciding(series, log)
    for i, (name, values) in enumerate(series.items()):
        every = max(1, len(values) // 8)
        label = name if name not in same else f"{name} (overlaps {same[name]})"
        axes.plot(xs[:len(values)], np.asarray(values, dtype=float), lw=1.2, ls="-",
                  color=colours(i), marker=MARKERS[i % len(MARKERS)], markersize=5,
                  fillstyle="none", markevery=(i * every // len(series), every), label=label)
        drawn[name] = colours(i)
    return drawn


def _coinciding(series: Series, log: bool) -> dict[str, str]:
    """Each series that is within ``SETTLED`` of the plot's range of an earlier one,
    all along, with the first such series."""
    curves = {name: np.asarray(values, dtype=float) for name, values in series.items()}
    if log:
        curves = {name: np.log10(np.maximum(y, FLOOR)) for name, y in curves.items()}
    finite = np.concatenate([np.empty(0), *(y[np.isfinite(y)].ravel() for y in curves.values())])
    span = float(np.ptp(finite)) if finite.size else 0.0
    same: dict[str, str] = {}
    names = list(curves)
    for i, name in enumerate(names):
        for earlier in names[:i]:
            if (earlier not in same and curves[earlier].shape == curves[name].shape
                    and _within(curves[earlier] - curves[name], SETTLED * span)):
                same[name] = earlier
                break
    return same


def _within(difference: np.ndarray, tolerance: float) -> bool:
    finite = np.abs(difference[np.isfinite(difference)])
    return bool(finite.size) and bool(np.all(finite <= tolerance))


def _owner_colour(reference: str, colours: Mapping[str, Any]) -> Any:
    owners = [name for name in colours if reference.startswith(f"{name} ")]
    return colours[max(owners, key=len)] if owners else "black"


def _spread(axes: Any, xs: np.ndarray, series: Series, log: bool) -> dict[str, Any]:
    length = min(len(values) for values in series.values())
    # rows: every series' every entry (a vector-valued series counts each of its entries)
    stacked = np.vstack([np.asarray(values[:length], dtype=float).reshape(length, -1).T
                         for values in series.values()])
    x = xs[:length]
    low, p10, median, p90, high = np.nanpercentile(stacked, [0, 10, 50, 90, 100], axis=0)
    axes.fill_between(x, low, high, color="tab:blue", alpha=0.15,
                      label=f"all {len(series)}: min to max")
    axes.fill_between(x, p10, p90, color="tab:blue", alpha=0.3, label="10th to 90th percentile")
    axes.plot(x, median, color="tab:blue", lw=1.5, label="median")
    highlighted = dict(zip(list(series)[:HIGHLIGHTED], ("tab:orange", "tab:green", "tab:red"),
                           strict=False))
    for name, colour in highlighted.items():
        axes.plot(x, np.asarray(series[name][:length], dtype=float), color=colour, lw=1,
                  label=name)
    return highlighted


def plot_loss_against(path: Path, title: str, losses: Mapping[str, Sequence[float]],
                      xs: Mapping[str, Sequence[float]], xlabel: str,
                      ylabel: str = "loss") -> None:
    """Plot each node's values against its own x values (its ticks, the seconds since it
    started, the bytes it had sent) on a log y axis, up to ``EACH_UP_TO`` nodes; nothing
    when no node has two points with their x."""
    drawn = {node: min(len(values), len(xs.get(node, ()))) for node, values in losses.items()}
    drawn = {node: n for node, n in drawn.items() if n > 1}
    if not drawn:
        return
    with figure(path, title, xlabel, ylabel, logy=True, legend_beside=True) as axes:
        for node, n in list(drawn.items())[:EACH_UP_TO]:
            axes.plot(np.asarray(xs[node][:n], dtype=float),
                      np.asarray(losses[node][:n], dtype=float),
                      lw=1.2, marker="." if n <= 50 else None, label=node)
