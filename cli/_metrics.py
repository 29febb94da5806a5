"""``--tensorboard``, ``--metrics-format`` and ``--node-metrics``: a run's per-iteration
metrics, checked before it runs and written once it ends (``peerflow.jobs.write_run_metrics``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from peerflow.actors import RunResult
from peerflow.jobs import MetricsOptions, write_run_metrics


def metrics_options(out: Path | None, tensorboard: Path | None, fmt: str,
                    node_metrics: bool | None) -> MetricsOptions:
    """The options, checked before the run.

    Raises:
        JobError: an unknown format, tensorboardX missing, or an unusable folder.
    """
    return MetricsOptions(fmt, tensorboard, node_metrics).check(out)


def write_metrics(out: Path | None, options: MetricsOptions, executors: Mapping[str, Any],
                  result: RunResult, iterations: int | None = None, controller: Any = None,
                  classification: bool = False) -> None:
    """Write what the run's executors (and workflow ``controller``) reached; say where."""
    for line in write_run_metrics(out, options, executors, wall_time=result.wall_time,
                                  iterations=iterations, controller=controller,
                                  classification=classification):
        typer.echo(line, err=True)
