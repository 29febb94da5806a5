"""``--ray [ADDRESS]`` for ``peerflow simulate`` and ``peerflow controller``: the job's nodes
sharded over a Ray cluster's actors, its controller in this process
(``peerflow.jobs.run_on_ray``); the same summary.json and plots as a run in one process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from peerflow import jobs
from peerflow.actors import DistOptController, RunResult
from peerflow.jobs import Job
from peerflow.transport import split_address

from . import _render as render
from ._errors import CliInputError
from ._interrupt import EXIT_CODE, Interrupted, run_async

RAY_OPTION = "--ray"
RayAddress = Annotated[str | None, typer.Option(
    RAY_OPTION, metavar="[ADDRESS]",
    help="Run the nodes on a Ray cluster, sharded over actors (one per CPU, or --shards): "
    "ADDRESS is auto, HOST:PORT or ray://HOST:10001; bare --ray: RAY_ADDRESS, else a local "
    "Ray. Needs peerflow\\[ray].")]
Shards = Annotated[int | None, typer.Option(
    "--shards", min=1, help="With --ray: how many shard actors host the nodes (default: one "
    "per CPU of the cluster).")]

ControllerListen = Annotated[str | None, typer.Option(
    "--listen", help="HOST:PORT to listen on (port 0: any); default 127.0.0.1:7000, with "
    "--ray this host's Ray address, any port (0.0.0.0: announced as that address).")]


def bare_ray(args: list[str]) -> list[str]:
    """``args`` with an empty ADDRESS after a bare ``--ray`` (typer options take a value)."""
    out: list[str] = []
    for index, arg in enumerate(args):
        out.append(arg)
        following = args[index + 1] if index + 1 < len(args) else None
        if arg == RAY_OPTION and (following is None or following.startswith("-")):
            out.append("")
    return out


def check_ray_options(ray: str | None, shards: int | None, processes: bool = False) -> None:
    """Refuse ``--shards`` without ``--ray``, and ``--ray`` with ``--processes``.

    Raises:
        CliInputError: naming the options that do not go together.
    """
    if shards is not None and ray is None:
        raise CliInputError("--shards goes with --ray: the shards are Ray actors")
    if ray is not None and processes:
        raise CliInputError("--ray and --processes both run the nodes outside this process; "
                            "choose one")


def controller_on_ray(job: Job, address: str, shards: int | None, out: Path | None,
                      listen: str | None, tls: Path | None,
                      controller: DistOptController | None) -> int:
    """``peerflow controller --ray``: the job's nodes on Ray; the exit code.

    Raises:
        CliInputError: ``--tls`` given (the shards use a join secret), or a bad ``--listen``.
    """
    if tls is not None:
        raise CliInputError("--tls takes a provisioned project's kits; with --ray the shards "
                            "connect over TCP with a join secret of the run")
    if listen is not None:
        try:
            split_address(listen)
        except ValueError:
            raise CliInputError(f"--listen {listen!r} is not HOST:PORT") from None
    return run_ray(job, address, shards, out, listen=listen, controller=controller)


def run_ray(job: Job, address: str, shards: int | None, out: Path | None, *,
            scheme: str = "tcp", listen: str | None = None,
            controller: DistOptController | None = None) -> int:
    """Run ``job`` on Ray, report it as a run in one process would; the exit code.

    Raises:
        JobError: Ray is missing or unreachable, or ``shards`` does not fit.
    """
    owned = jobs.connect_ray(address or None, shards)
    try:
        result = run_async(lambda: jobs.run_on_ray(job, shards=shards, scheme=scheme,
                                                   listen=listen, controller=controller))
    except Interrupted as exc:
        render.report_interrupted(job.algorithm, RunResult("interrupted", str(exc)),
                                  job.config, {}, out)
        return EXIT_CODE
    finally:
        if owned:
            jobs.import_ray().shutdown()
    render.print_table(*jobs.report_job(result, job, out, controller))
    if not result.ok:
        typer.echo(f"peerflow: run aborted at node {result.node!r} iteration "
                   f"{result.iteration}: {result.reason}", err=True)
        return 1
    return 0
