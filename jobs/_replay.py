"""A run read back from its summary.json: checked, its table and its plots drawn again.

summary.json holds the table as it was printed and every node's results, so what
``peerflow show`` renders is what the run rendered, without the run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._async_jobs import plot_async_learning, plot_averaging
from ._consensus import plot_consensus
from ._errors import JobError
from ._fedavg import plot_fedavg
from ._learning_plots import plot_learning, plot_push_sum
from ._output import SUMMARY_FORMAT, SUMMARY_VERSION
from ._registry import ALGORITHMS
from ._table import Table

Summary = dict[str, Any]
PLOTS: dict[str, Callable[[Mapping[str, Any], Path], None]] = {
    "consensus": plot_consensus, "push-sum": plot_push_sum, "fedavg": plot_fedavg,
    "gossip": plot_averaging, "async-push-sum": plot_averaging,
    "ad-psgd": plot_async_learning, "async-gradient-push": plot_async_learning}
"""Each algorithm's plots from its summary (a learning algorithm's: ``plot_learning``)."""
NEEDED = ("algorithm", "status", "results", "table", "config", "metrics")
"""What a summary must hold to be shown and compared (a run interrupted before it began
has no table: it has nothing to show)."""


def read_summary(run: Path) -> Summary:
    """The summary.json of the run folder ``run``, checked to be this peerflow's format.

    Raises:
        JobError: the folder is missing, holds no summary.json, or it is not JSON, of
            another format or version, or lacks a field a report needs.
    """
    if not run.is_dir():
        raise JobError(f"run folder {str(run)!r} "
                       f"{'is not a folder' if run.exists() else 'does not exist'}")
    path = run / "summary.json"
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError:
        raise JobError(f"{str(run)!r} holds no summary.json: is it a run's --out?") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JobError(f"{str(path)!r} is not a readable JSON file: {exc}") from None
    if not isinstance(summary, dict):
        raise JobError(f"{str(path)!r} is not a run summary (a JSON object)")
    found = (summary.get("format"), summary.get("format_version"))
    if found != (SUMMARY_FORMAT, SUMMARY_VERSION):
        said = ("has no format field (an older peerflow wrote it)" if found == (None, None)
                else f"is format {found[0]!r} version {found[1]!r}")
        raise JobError(f"{str(path)!r} {said}; this peerflow reads {SUMMARY_FORMAT!r} "
                       f"version {SUMMARY_VERSION}: run it again to write one")
    missing = [key for key in NEEDED if summary.get(key) is None]
    if missing:
        raise JobError(f"{str(path)!r} lacks {missing}: the run wrote no report to show "
                       f"(status {summary.get('status')!r})")
    return summary


def summary_table(summary: Mapping[str, Any]) -> Table:
    """The summary table the run printed."""
    table = summary["table"]
    return Table(table["title"], [(str(name), str(value)) for name, value in table["rows"]])


def plot_summary(summary: Mapping[str, Any], out: Path) -> None:
    """Draw the run's plots into ``out``, as the run drew them.

    Raises:
        JobError: the algorithm is not one of this peerflow's.
    """
    algorithm = summary["algorithm"]
    plot = PLOTS.get(algorithm)
    if plot is None and algorithm in ALGORITHMS and ALGORITHMS[algorithm].learning:
        plot = plot_learning
    if plot is None:
        raise JobError(f"the run's algorithm {algorithm!r} is not one peerflow plots; "
                       f"known: {sorted(ALGORITHMS)}")
    plot(summary, out)
