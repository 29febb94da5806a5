"""Running a job in this process and showing its outcome: the one path every ``simulate``
command takes once it has built its executors."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import typer

import peerflow
from peerflow import jobs
from peerflow.actors import Config, ConfigError, RunResult, memory_transport
from peerflow.jobs import in_process_timeout

from . import _render as render
from ._engine import on_actors, run_batched
from ._errors import CliInputError
from ._interrupt import EXIT_CODE, Interrupted, end_process, run_async
from ._jobs import Job
from ._launch import network_transport, run_processes
from ._metrics import controller_args
from ._ray import run_ray

PROCESSES = "--processes runs one process per node"
RAY = "--ray runs the nodes in shards of actors"


def run_elsewhere(job: Job, engine: str, transport: str, out: Path | None, metrics: Any, *,
                  processes: bool, ray: str | None = None, shards: int | None = None,
                  node_options: Sequence[str] = ()) -> None:
    """With ``--ray`` or ``--processes``, run ``job`` there and exit with its code (the
    actor engine: ``engine`` batched says it cannot); else return."""
    if ray is not None:
        on_actors(engine, RAY)
        raise typer.Exit(run_ray(job, ray, shards, out, scheme=network_transport(transport)))
    if processes:
        on_actors(engine, PROCESSES)
        raise typer.Exit(run_processes(job, transport, out, node_options,
                                       controller_args(metrics)))


def run_here(engine: str, config: Config, executors: Mapping[str, Any], transport: str,
             on_progress: Callable[[Mapping[str, int | None]], None], allow_disconnected: bool,
             count_bytes: bool = False) -> RunResult:
    """Run the job in this process: batched if ``engine`` asks it and the job can, else on
    actors (``run_in_process``)."""
    return (run_batched(engine, config, executors, transport, on_progress, allow_disconnected)
            or run_in_process(config, executors, transport, on_progress, allow_disconnected,
                              count_bytes))


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


def show_result(result: RunResult, config: Config, out: Path | None, table: jobs.Table, *,
                where: tuple[str, str] = ("node", "iteration")) -> None:
    """A reported run on the console: an interrupted one in one line (exit 130), else the
    summary table (and for an aborted one, where and why, ``where`` naming the node and
    the step: exit 1)."""
    if result.status == "interrupted":
        render.say_interrupted(result, config, out)
        end_process(EXIT_CODE)
    render.print_table(*table)
    if not result.ok:
        typer.echo(f"peerflow: run aborted at {where[0]} {result.node!r} {where[1]} "
                   f"{result.iteration}: {result.reason}", err=True)
        raise typer.Exit(1)
