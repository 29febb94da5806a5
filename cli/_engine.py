"""``--engine``: the actor engine, or the batched one for the runs that can go batched."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any

import typer

from peerflow.actors import Config, ConfigError, RunResult
from peerflow.algorithms import check_engine, fallback_line

from ._errors import CliInputError
from ._interrupt import Interrupted

Engine = Annotated[str, typer.Option(
    "--engine", help="actors (one actor per node, over --transport) or batched (every node's "
    "state stacked in one torch program, for in-process runs of one built-in algorithm and "
    "model; any other run says why and runs on actors).")]


def checked(engine: str) -> str:
    """``engine``, if known.

    Raises:
        CliInputError: it is not.
    """
    try:
        return check_engine(engine)
    except ValueError as exc:
        raise CliInputError(str(exc)) from None


def on_actors(engine: str, reason: str) -> None:
    """Say, if the batched engine was asked for, that this run goes to actors and why."""
    if checked(engine) == "batched":
        typer.echo(fallback_line(reason), err=True)


def run_batched(engine: str, config: Config, executors: Mapping[str, Any], transport: str,
                on_progress: Callable[[Mapping[str, int | None]], None],
                allow_disconnected: bool) -> RunResult | None:
    """The run on the batched engine, if asked for and possible; None: run it on actors
    (when the batched engine was asked for, a line on stderr says why).

    Raises:
        CliInputError: an unknown engine, or the network is invalid.
    """
    if checked(engine) == "actors":
        return None
    from peerflow import algorithms  # torch: the executors loaded it already

    reason = algorithms.batched_obstacle(config, executors, transport)
    if reason is not None:
        on_actors(engine, reason)
        return None
    try:
        return algorithms.simulate_batched(config, executors, on_progress=on_progress,
                                           allow_disconnected=allow_disconnected)
    except ConfigError as exc:
        raise CliInputError(str(exc)) from exc
    except Interrupted as exc:  # the nodes' states are one program's: none is kept
        return RunResult("interrupted", str(exc), engine="batched")
