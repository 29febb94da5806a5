"""What a run shows on the console: progress bar, summary table, the interrupted line.

``claim_out`` and ``prepare_out`` (``peerflow.jobs``) are the commands' checks of --out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from peerflow.actors import Config, RunResult
from peerflow.jobs import claim_out, prepare_out, write_summary

__all__ = ["claim_out", "console", "prepare_out", "print_table", "progress_bar",
           "report_interrupted", "say_interrupted"]

console = Console(stderr=True)


@contextmanager
def progress_bar(total: int, label: str) -> Iterator[Callable[[Mapping[str, int | None]], None]]:
    """Yield an ``on_progress`` callback drawing the slowest node's iterations done.

    On a non-terminal the callback does nothing.
    """
    if not console.is_terminal:
        yield lambda iterations: None
        return
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, auto_refresh=False, transient=True) as bar:
        task = bar.add_task(label, total=total)

        def update(iterations: Mapping[str, int | None]) -> None:
            done = min((i + 1 if i is not None else 0) for i in iterations.values())
            bar.update(task, completed=done)
            bar.refresh()

        yield update


def print_table(title: str, rows: Sequence[tuple[str, str]]) -> None:
    """Print a two-column summary table on stdout."""
    table = Table(title=title, show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)


def report_interrupted(algorithm: str, result: RunResult, config: Config,
                       out: Path | None) -> None:
    """Write the summary.json of a run interrupted before it began (no node to read) and
    say so in one line."""
    if out is not None:
        write_summary(out, algorithm, result, config)
    say_interrupted(result, config, out)


def say_interrupted(result: RunResult, config: Config, out: Path | None) -> None:
    """Say in one line that the run was interrupted, where, and where its summary is."""
    where = "" if out is None else f"; summary in {out / 'summary.json'}"
    at = "" if result.iteration is None else (
        f" at iteration {result.iteration} of {config.extra.get('iterations')}")
    typer.echo(f"peerflow: {result.reason}{at}{where}", err=True)
