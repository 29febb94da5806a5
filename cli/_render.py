"""What a run shows and leaves behind: progress bar, summary table, summary.json, plots."""

from __future__ import annotations

import fnmatch
import json
import math
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from peerflow.actors import Config, RunResult

from ._errors import CliInputError
from ._interrupt import EXIT_CODE

console = Console(stderr=True)

INDENT_LIMIT = 1_000_000
RESULT_FILES = ("summary.json", "*.png")
"""What a run writes in --out; ``--force`` removes these first, so none is left stale."""


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


def prepare_out(out: Path | None) -> Path | None:
    """Create the output folder and check that it takes a file, before anything runs.

    Raises:
        CliInputError: the path exists and is not a folder, or cannot be created or written.
    """
    if out is None:
        return None
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise CliInputError(f"--out {str(out)!r} exists and is not a folder") from None
    except OSError as exc:
        raise CliInputError(f"cannot create --out folder {str(out)!r}: {exc}") from exc
    try:
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise CliInputError(f"cannot write to --out folder {str(out)!r}: {exc}") from exc
    return out


def claim_out(out: Path | None, force: bool) -> Path | None:
    """``prepare_out`` for a run's results: a folder holding anything is refused unless
    ``force``; then the files a run writes (``RESULT_FILES``) are removed, others kept.

    Raises:
        CliInputError: as ``prepare_out``; or the folder is not empty and not ``force``,
            or a result file in it cannot be removed.
    """
    folder = prepare_out(out)
    if folder is None:
        return None
    entries = sorted(entry.name for entry in folder.iterdir())
    if entries and not force:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise CliInputError(f"--out {str(folder)!r} is not empty ({shown}); pass --force to "
                            f"replace the results in it ({', '.join(RESULT_FILES)})")
    for name in entries:
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in RESULT_FILES):
            try:
                (folder / name).unlink()
            except OSError as exc:
                raise CliInputError(f"--force cannot remove {str(folder / name)!r}: "
                                    f"{exc}") from exc
    return folder


def report_interrupted(algorithm: str, result: RunResult, config: Config,
                       reached: Mapping[str, int | None], out: Path | None) -> NoReturn:
    """Write an interrupted run's summary.json (no plots), say so in one line, exit 130."""
    where = ""
    if out is not None:
        write_json(out / "summary.json", {"algorithm": algorithm, **result.to_dict(),
                                          "iterations_reached": dict(reached),
                                          "config": config.to_dict()})
        where = f"; summary in {out / 'summary.json'}"
    at = "" if result.iteration is None else (
        f" at iteration {result.iteration} of {config.extra.get('iterations')}")
    typer.echo(f"peerflow: {result.reason}{at}{where}", err=True)
    raise typer.Exit(EXIT_CODE)


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON (numpy and torch values become lists, non-finite floats null);
    indented unless it is over ``INDENT_LIMIT`` characters (a 10,000-node config)."""
    try:  # the C encoder, with no walk over the data first: seconds at 10,000 nodes
        text = json.dumps(data, default=_as_list, allow_nan=False)
    except ValueError:  # a non-finite float somewhere: walk the data and replace them
        text = json.dumps(_plain(data), allow_nan=False)
    if len(text) <= INDENT_LIMIT:
        text = json.dumps(json.loads(text), indent=2)
    path.write_text(text + "\n")


def plot_lines(path: Path, series: Mapping[str, Sequence[float]], *, title: str, ylabel: str,
               xlabel: str = "iteration", log: bool = False) -> None:
    """Plot one line per named series against its index (``xlabel``) into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    for name, values in series.items():
        axes.plot(np.arange(len(values)), np.asarray(values, dtype=float), label=name, lw=1)
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if log:
        axes.set_yscale("log")
    if len(series) <= 12:
        axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _as_list(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
