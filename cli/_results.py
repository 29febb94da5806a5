"""``peerflow show`` and ``peerflow compare``: runs read back from their summary.json.

``show`` prints a run's summary table and draws its plots again; ``compare`` prints
runs' key figures side by side and draws their curves on shared axes. Neither runs
anything: summary.json holds what they need.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from peerflow import jobs

from . import _render as render

Run = Annotated[Path, typer.Argument(
    metavar="RUN", help="A run's --out folder (it holds summary.json).", show_default=False)]
Runs = Annotated[list[Path], typer.Argument(
    metavar="RUN", show_default=False,
    help="Two or more runs' --out folders, labelled by their names in the table and plots.")]
ShowOut = Annotated[Path | None, typer.Option(
    "--out", "-o", help="Folder for the plots (default: the run's folder, whose plots are "
    "drawn again).")]
CompareOut = Annotated[Path | None, typer.Option(
    "--out", "-o", help="Folder for the comparison plots (none without it).")]


def add_commands(app: typer.Typer) -> None:
    """Register ``show`` and ``compare`` on the ``peerflow`` app."""
    app.command("show")(show)
    app.command("compare")(compare)


def show(run: Run, out: ShowOut = None) -> None:
    """Print a run's summary table and draw its plots again, from RUN/summary.json."""
    summary = jobs.read_summary(run)
    folder = render.prepare_out(out) or run
    render.print_table(*jobs.summary_table(summary))
    jobs.plot_summary(summary, folder)


def compare(runs: Runs, out: CompareOut = None) -> None:
    """Print runs' key figures side by side (algorithm, nodes, topology, iterations, final
    errors and losses, wall time); with --out, plot their curves on shared axes."""
    summaries = {label: jobs.read_summary(run) for label, run in zip(_labels(runs), runs,
                                                                      strict=True)}
    kind = jobs.check_comparable(summaries)
    folder = render.prepare_out(out)
    table = Table(title=f"{len(runs)} runs: {kind}")
    table.add_column("", style="bold")
    for label in summaries:
        table.add_column(label, justify="right")
    for name, values in jobs.key_figures(summaries):
        table.add_row(name, *values)
    Console().print(table)
    if folder is not None:
        for path in jobs.plot_comparison(summaries, folder):
            typer.echo(f"wrote {path}", err=True)


def _labels(runs: Sequence[Path]) -> list[str]:
    """Each run's label: its folder's name, or its path where two names are the same."""
    names = [run.resolve().name or str(run) for run in runs]
    return [name if names.count(name) == 1 else str(run) for name, run in zip(names, runs,
                                                                                 strict=True)]
