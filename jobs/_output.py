"""What a run leaves behind: its --out folder and summary.json (plots: ``_plots``)."""

from __future__ import annotations

import fnmatch
import json
import math
import platform
import shlex
import sys
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import peerflow
from peerflow.actors import Config, RunResult

from ._errors import JobError
from ._setup import run_setup
from ._table import Table

SUMMARY_FORMAT = "peerflow-summary"
SUMMARY_VERSION = 2
"""summary.json's layout version: 2 added the setup fields (seed, topology, transport,
engine), labelled loss sequences, each node's iteration reached and the table."""
INDENT_LIMIT = 1_000_000
RESULT_FILES = ("summary.json", "*.png", "global_weights.npz", "network.json", "topology.json",
                "metrics.jsonl", "metrics.csv")
"""What a run (or `peerflow topology`) writes in --out; ``--force`` removes these first,
so none is left stale."""


INTERRUPTED_KEEPS = 100_000
"""Node-iterations an interrupted run keeps the results of; past them, only how far each
node got: writing 10,000 nodes' histories would hold up the stop by seconds."""


def prepare_out(out: Path | None) -> Path | None:
    """Create the output folder and check that it takes a file, before anything runs.

    Raises:
        JobError: the path exists and is not a folder, or cannot be created or written.
    """
    if out is None:
        return None
    make_folder(out, "--out")
    try:
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise JobError(f"cannot write to --out folder {str(out)!r}: {exc}") from exc
    return out


def make_folder(folder: Path, option: str) -> None:
    """Create ``folder`` (and its parents) for ``option`` if it is not there.

    Raises:
        JobError: the path exists and is not a folder, or cannot be created.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise JobError(f"{option} {str(folder)!r} exists and is not a folder") from None
    except OSError as exc:
        raise JobError(f"cannot create {option} folder {str(folder)!r}: {exc}") from exc


def claim_out(out: Path | None, force: bool) -> Path | None:
    """``prepare_out`` for a run's results: a folder holding anything is refused unless
    ``force``; then the files a run writes (``RESULT_FILES``) are removed, others kept.

    Raises:
        JobError: as ``prepare_out``; or the folder is not empty and not ``force``,
            or a result file in it cannot be removed.
    """
    folder = prepare_out(out)
    if folder is None:
        return None
    entries = sorted(entry.name for entry in folder.iterdir())
    if entries and not force:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise JobError(f"--out {str(folder)!r} is not empty ({shown}); pass --force to "
                       f"replace the results in it ({', '.join(RESULT_FILES)})")
    for name in entries:
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in RESULT_FILES):
            try:
                (folder / name).unlink()
            except OSError as exc:
                raise JobError(f"--force cannot remove {str(folder / name)!r}: "
                               f"{exc}") from exc
    return folder


def write_summary(out: Path, algorithm: str, result: RunResult, config: Config,
                  table: Table | None = None, **fields: Any) -> dict[str, Any]:
    """Write ``out/summary.json`` and return what it holds: its format, the run's outcome,
    how it was set up (``run_setup``), ``fields`` (``results`` among them replaces the
    run's: what an aborted run's nodes reached), the summary ``table``, the config, and
    where it came from (``provenance``)."""
    summary = {"format": SUMMARY_FORMAT, "format_version": SUMMARY_VERSION,
               "algorithm": algorithm, **result.to_dict(), **run_setup().to_dict(), **fields,
               "table": None if table is None else {"title": table.title,
                                                    "rows": [list(row) for row in table.rows]},
               "config": config.to_dict(), "run": provenance()}
    write_json(out / "summary.json", summary)
    return summary


def reached_results(result: RunResult, executors: Mapping[str, Any]) -> dict[str, Any]:
    """``write_summary`` fields of what the nodes reached: each node's last iteration
    sent and, for a run that did not complete (its result holds no answers), each node's
    result so far (``to_result``): for an interrupted run, up to ``INTERRUPTED_KEEPS``
    node-iterations. In a multi-process run (no executor ran here), the nodes'
    last iterations as they answered (``RunResult.reached``)."""
    ran = {node: ex for node, ex in executors.items() if ex.config is not None}
    if not ran:  # a multi-process run: the nodes' own answers are in the result
        return {"iterations_reached": result.reached}
    reached = {node: ex.iteration for node, ex in ran.items()}
    fields: dict[str, Any] = {"iterations_reached": reached}
    steps = len(reached) * max((it or 0 for it in reached.values()), default=0)
    if result.status == "aborted" or (not result.ok and steps <= INTERRUPTED_KEEPS):
        fields["results"] = {node: ex.to_result() for node, ex in ran.items()}
    return fields


def provenance() -> dict[str, Any]:
    """The versions that made a result, the process's command line, when, and the unit of
    every time in the summary."""
    torch = sys.modules.get("torch")
    return {"peerflow": peerflow.__version__, "python": platform.python_version(),
            "torch": None if torch is None else str(torch.__version__),
            "command": shlex.join(sys.argv), "finished_at": datetime.now(UTC).isoformat(),
            "units": {"timings": "seconds", "wall_time": "seconds",
                      "*_loss_sequence": {"iteration": "iterations done (0: the initial model)",
                                          "seconds": "since the node's run started",
                                          "loss": "the loss function's"},
                      "iterations_reached": "the last iteration each node sent (from 0)",
                      "epoch_lengths": "iterations per epoch",
                      "distance_to_optimum": {"iteration": "iterations done",
                                              "distance": "||x_i - x*|| (Euclidean)"}}}


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
