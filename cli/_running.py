"""Running a job in this process and showing its outcome: the one path every ``simulate``
command takes once it has built its executors."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import typer

import peerflow
from peerflow import jobs
from peerflow.actors import Config, ConfigError, RunResult, memory_transport
from peerflow.jobs import in_process_timeout

from . import _render as render
from ._errors import CliInputError
from ._interrupt import EXIT_CODE, Interrupted, end_process, run_async


def run_in_process(config: Config, executors: Mapping[str, Any], transport: str,
              on_progress: Callable[[Mapping[str, int | None]], None],
              allow_disconnected: bool, count_bytes: bool = False) -> RunResult:
    """Run the job; SIGINT or SIGTERM stop every node and give an "interrupted" result.
    ``count_bytes``: in memory, count what each node sends (it costs an encode per value)."""
    def stop() -> None:
        # The run's objects live until exit: spare them the full collections that the
        # unwinding and the summary would trigger (seconds at 10,000 nodes).
        gc.freeze()
        for executor in executors.values():
            executor.stop()

    started = time.perf_counter()
    carrier = memory_transport(count_bytes=count_bytes) if transport == "memory" else transport
    try:
        return run_async(lambda: peerflow.run(
            config, executors, carrier, on_progress=on_progress,
            allow_disconnected=allow_disconnected,
            config_timeout=in_process_timeout(10.0, len(executors))),
                         on_signal=stop)
    except ConfigError as exc:
        raise CliInputError(str(exc)) from exc
    except Interrupted as exc:
        reached = [ex.iteration for ex in executors.values() if ex.iteration is not None]
        return RunResult("interrupted", str(exc), iteration=min(reached, default=None),
                         timings={"total": time.perf_counter() - started})


def show_result(result: RunResult, config: Config, out: Path | None, table: jobs.Table) -> None:
    """A reported run on the console: an interrupted one in one line (exit 130), else the
    summary table (and for an aborted one, why: exit 1)."""
    if result.status == "interrupted":
        render.say_interrupted(result, config, out)
        end_process(EXIT_CODE)
    render.print_table(*table)
    exit_on_abort(result)


def exit_on_abort(result: RunResult) -> None:
    if not result.ok:
        typer.echo(f"peerflow: run aborted at node {result.node!r} iteration "
                   f"{result.iteration}: {result.reason}", err=True)
        raise typer.Exit(1)
