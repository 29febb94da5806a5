"""Jobs on the command line: a controller's report of a job's run, on the console too.

The job itself (``Job``, its file, its executors) is ``peerflow.jobs``'s; the
distributed commands take those names from here with the console's ``report_job``.
"""

from __future__ import annotations

from pathlib import Path

from peerflow import jobs
from peerflow.actors import DistOptController, RunResult
from peerflow.jobs import Job, build_controller, build_executors, load_job

from . import _render as render

__all__ = ["Job", "build_controller", "build_executors", "load_job", "report_job"]


def report_job(result: RunResult, job: Job, out: Path | None,
               controller: DistOptController | None = None) -> None:
    """Print the summary table and write (``summary.json`` in ``out``) what the simulator
    would for this job (a workflow's report comes from its ``controller``)."""
    render.print_table(*jobs.report_job(result, job, out, controller))
