"""Runs side by side: their key figures in one table, their curves on shared axes.

Runs compare when their curves mean the same thing: averaging runs (consensus,
push-sum) by the distance of the values to the average of the initial values;
learning runs of one problem by the mean loss over the nodes, by iteration; fedavg
runs of one problem by the global model's loss, by round.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ._errors import JobError
from ._plots import figure
from ._registry import ALGORITHMS

FLOOR = 1e-17
"""Distances below double precision are drawn at this floor on the log plot."""
Summary = Mapping[str, Any]


def run_kind(summary: Summary) -> str:
    """What a run's curves mean: "averaging", "learning on PROBLEM" or "fedavg on PROBLEM"."""
    algorithm = summary["algorithm"]
    if algorithm in ("consensus", "push-sum"):
        return "averaging"
    problem = summary.get("problem") or summary["metrics"].get("problem")
    if algorithm == "fedavg":
        return f"fedavg on {problem}"
    spec = ALGORITHMS.get(algorithm)
    if spec is None or not spec.learning:
        raise JobError(f"the run's algorithm {algorithm!r} is not one peerflow compares; "
                       f"known: {sorted(ALGORITHMS)}")
    return f"learning on {problem}"


def check_comparable(runs: Mapping[str, Summary]) -> str:
    """The kind all ``runs`` share (``run_kind``).

    Raises:
        JobError: fewer than two runs, or runs of different kinds.
    """
    if len(runs) < 2:
        raise JobError(f"compare needs at least two runs, got {len(runs)}")
    kinds = {label: run_kind(summary) for label, summary in runs.items()}
    if len(set(kinds.values())) > 1:
        said = ", ".join(f"{label!r} is {kind}" for label, kind in kinds.items())
        raise JobError(f"runs of different kinds cannot be compared: {said}")
    return next(iter(kinds.values()))


def key_figures(runs: Mapping[str, Summary]) -> list[tuple[str, list[str]]]:
    """One row per figure (algorithm, nodes, topology, ..., wall time, then every metric
    any run has), one value per run ("-": the run has none)."""
    rows = [(name, [_figure(get(summary)) for summary in runs.values()])
            for name, get in _SETUP_ROWS]
    metrics = dict.fromkeys(name for summary in runs.values() for name in summary["metrics"])
    rows += [(name.replace("_", " "), [_figure(summary["metrics"].get(name))
                                       for summary in runs.values()]) for name in metrics]
    return rows


def _topology(summary: Summary) -> Any:
    topology = summary.get("topology") or {}
    return topology.get("name")


_SETUP_ROWS = (
    ("algorithm", lambda s: s["algorithm"]), ("status", lambda s: s["status"]),
    ("nodes", lambda s: len(s["config"]["network"]["nodes"])), ("topology", _topology),
    ("seed", lambda s: s.get("seed")), ("transport", lambda s: s.get("transport")),
    ("engine", lambda s: s.get("engine")),
    ("iterations", lambda s: s["config"]["extra"].get("iterations")),
    ("stopped at iteration", lambda s: None if s["status"] == "completed" else s["iteration"]),
    ("wall time", lambda s: f"{s['wall_time']:.3f} s"),
)


def _figure(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class Comparison(NamedTuple):
    """One comparison plot: what it shows, its axes' labels, each run's curve (x, y), and
    whether its y axis is logarithmic."""

    what: str
    xlabel: str
    ylabel: str
    curves: dict[str, tuple[list[float], list[float]]]
    log: bool = False


def comparison_curves(runs: Mapping[str, Summary]) -> dict[str, Comparison]:
    """Each comparison plot by file name (``check_comparable`` the runs first)."""
    kind = run_kind(next(iter(runs.values())))
    if kind == "averaging":
        return {"compare_distance.png": Comparison(
            "distance to the average", "iteration", "max_i |x_i - average of x(0)|",
            {label: _distance(s) for label, s in runs.items()}, log=True)}
    if kind.startswith("fedavg"):
        return {f"compare_{name}.png": Comparison(
            f"the global model's {name.replace('_', ' ')}", "round", name.replace("_", " "),
            {label: _global(s, name) for label, s in runs.items()})
            for name in ("train_loss", "test_loss")}
    return {f"compare_{part}_loss.png": Comparison(
        f"mean {part} loss", "iteration", f"mean {part} loss over the nodes",
        {label: _mean_loss(s, part) for label, s in runs.items()})
        for part in ("train", "test")}


def _distance(summary: Summary) -> tuple[list[float], list[float]]:
    """max_i |x_i(t) - average of x(0)| per iteration, over the iterations every node has."""
    histories = [np.asarray(r["value_history"], dtype=float)
                 for r in summary["results"].values()]
    if not histories:
        return [], []
    length = min(len(h) for h in histories)
    stacked = np.stack([h[:length].reshape(length, -1) for h in histories])
    distance = np.abs(stacked - stacked[:, 0].mean(axis=0)).max(axis=(0, 2))
    return list(range(length)), np.maximum(distance, FLOOR).tolist()


def _mean_loss(summary: Summary, kind: str) -> tuple[list[float], list[float]]:
    """The mean over the nodes of each evaluation's loss, by iteration."""
    by_iteration: dict[int, list[float]] = defaultdict(list)
    for result in summary["results"].values():
        records = result[f"{kind}_loss_sequence"]
        for iteration, loss in zip(records["iteration"], records["loss"], strict=True):
            by_iteration[iteration].append(loss)
    ordered = sorted(by_iteration)
    return ordered, [float(np.mean(by_iteration[t])) for t in ordered]


def _global(summary: Summary, name: str) -> tuple[list[float], list[float]]:
    """The global model's loss by round (0: the initial model), if it was evaluated."""
    start = summary["metrics"].get(f"{name}_start")
    if start is None:
        return [], []
    losses = [start, *(r["metrics"][name] for r in summary["rounds"])]
    return list(range(len(losses))), losses


def plot_comparison(runs: Mapping[str, Summary], out: Path) -> list[Path]:
    """Draw each comparison plot into ``out``, one curve per run labelled by it; the files
    written (a plot no run has data for is left out)."""
    written = []
    for filename, plot in comparison_curves(runs).items():
        if not any(len(x) for x, _ in plot.curves.values()):
            continue
        algorithms = " vs ".join(dict.fromkeys(s["algorithm"] for s in runs.values()))
        with figure(out / filename, f"{plot.what}: {algorithms}, {len(runs)} runs",
                    plot.xlabel, plot.ylabel, logy=plot.log, legend_beside=True) as axes:
            for label, (x, y) in plot.curves.items():
                axes.plot(x, y, lw=1.4, label=label)
        written.append(out / filename)
    return written
