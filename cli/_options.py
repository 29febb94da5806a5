"""Options shared by the commands, as ``Annotated`` types."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Nodes = Annotated[int, typer.Option("--nodes", "-n", min=1, help="Number of nodes.")]
TopologyName = Annotated[str, typer.Option(
    "--topology", "-t",
    help="ring, path, star, grid, complete, random, directed-ring or random-directed.")]
Seed = Annotated[int, typer.Option("--seed", min=0, help="Seed of every random draw.")]
Iterations = Annotated[int, typer.Option("--iterations", "-i", min=0, help="Iterations to run.")]
NetworkFile = Annotated[Path | None, typer.Option(
    "--network", help="NVFlare-shaped network JSON; overrides --topology and --nodes.")]
TransportName = Annotated[str, typer.Option("--transport", help="memory.")]
Out = Annotated[Path | None, typer.Option(
    "--out", "-o", help="Folder for summary.json and plots (nothing is written without it).")]
SyncTimeout = Annotated[float, typer.Option(
    "--sync-timeout", min=0.001, help="Seconds to wait for neighbours each iteration.")]
