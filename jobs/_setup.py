"""How a run was set up, beside what it did: seed, topology and transport (the engine
that ran it is the run's result's own, ``RunResult.engine``).

The command that starts a run knows these (its options); the reports that write
summary.json do not. The command states them once (``use_run_setup``) in its
context, and ``write_summary`` reads them from there: ``peerflow.cli.main`` runs each
command in a copy of the context, so one command's setup never reaches the next.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class RunSetup:
    """What summary.json says a run was set up with (None: not known to the writer).

    Attributes:
        seed: the seed of every random draw (data, models, initial values, topology).
        topology: how the network was made (``topology_of``).
        transport: "memory", "tcp" or "tls".
    """

    seed: int | None = None
    topology: Mapping[str, Any] = field(default_factory=dict)
    transport: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "topology": dict(self.topology) or None,
                "transport": self.transport}


def topology_of(name: str | None, nodes: int, seed: int | None,
                network_file: Path | None = None) -> dict[str, Any]:
    """A network's making: ``{"name", "nodes", "seed"}`` for a built-in topology,
    ``{"name": "file", "nodes", "file"}`` for a network file (``--network`` wins)."""
    if network_file is not None:
        return {"name": "file", "nodes": nodes, "file": str(network_file)}
    return {"name": name, "nodes": nodes, "seed": seed}


_SETUP: ContextVar[RunSetup | None] = ContextVar("peerflow_run_setup", default=None)


def use_run_setup(setup: RunSetup) -> None:
    """Say how the runs of the current context are set up (what ``run_setup`` returns)."""
    _SETUP.set(setup)


def run_setup() -> RunSetup:
    """The current context's run setup (if none was stated: every field unknown)."""
    return _SETUP.get() or RunSetup()
