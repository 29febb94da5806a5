"""``--tensorboard``, ``--metrics-format`` and ``--node-metrics``: a run's per-iteration
metrics, checked before it runs and written once it ends (``peerflow.jobs.write_run_metrics``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from peerflow.actors import RunResult
from peerflow.jobs import Job, MetricsOptions, write_job_metrics, write_run_metrics


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
    """Write what the run's executors (and workflow ``controller``) reached; say where.
    Not for an interrupted run: it stops at once (its summary says how far it got)."""
    if result.status == "interrupted":
        return
    for line in write_run_metrics(out, options, executors, wall_time=result.wall_time,
                                  iterations=iterations, controller=controller,
                                  classification=classification):
        typer.echo(line, err=True)


def write_node_metrics(out: Path | None, options: MetricsOptions, result: RunResult, job: Job,
                       controller: Any = None) -> None:
    """``peerflow controller``: write what the node processes sent back; say where."""
    for line in write_job_metrics(result, job, out, options, controller):
        typer.echo(line, err=True)


def controller_args(options: MetricsOptions) -> list[str]:
    """The ``peerflow controller`` options that ask it for these metrics."""
    tensorboard = [] if options.tensorboard is None else ["--tensorboard",
                                                           str(options.tensorboard)]
    every = {None: [], True: ["--node-metrics"], False: ["--no-node-metrics"]}
    return ["--metrics-format", options.format, *tensorboard, *every[options.node_metrics]]
