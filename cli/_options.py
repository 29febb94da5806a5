"""Options shared by the commands, as ``Annotated`` types."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from peerflow.jobs import MAX_SYNC_TIMEOUT

Nodes = Annotated[int, typer.Option("--nodes", "-n", min=1, help="Number of nodes.")]
TopologyName = Annotated[str, typer.Option(
    "--topology", "-t",
    help="ring, path, star, grid, complete, random, directed-ring, random-directed or "
    "exponential; time-varying: exponential-one-peer, random-matching, or "
    "cycle-of-graphs:ring,star,... (one graph per iteration, in turn).")]
Seed = Annotated[int, typer.Option("--seed", min=0, help="Seed of every random draw.")]
Iterations = Annotated[int, typer.Option("--iterations", "-i", min=0, help="Iterations to run.")]
NetworkFile = Annotated[Path | None, typer.Option(
    "--network", help="NVFlare-shaped network JSON (a list of networks, or a folder of "
    "them, is a time-varying one); overrides --topology and --nodes.")]
InitialValues = Annotated[Path | None, typer.Option(
    "--initial-values", help="JSON map node -> initial value (a number, or a list of numbers "
    "for vectors), one per node; default: uniform in [0, 1) from --seed.")]
TransportName = Annotated[str, typer.Option(
    "--transport", help="memory, tcp or tls: over tcp/tls every node (and the controller) "
    "has its own loopback listener; tls with a throwaway project CA.")]
Processes = Annotated[bool, typer.Option(
    "--processes", help="One `peerflow node` process per node plus a controller process "
    "(over --transport tcp or tls; memory means tcp).")]
Out = Annotated[Path | None, typer.Option(
    "--out", "-o", help="Folder for summary.json and plots (nothing is written without it).")]
SyncTimeout = Annotated[float, typer.Option(
    "--sync-timeout", min=0.001, max=MAX_SYNC_TIMEOUT,
    help="Seconds to wait for neighbours each iteration (consensus in one process: at "
    "least 5 ms per node, as every node shares one event loop).")]
AllowDisconnected = Annotated[bool, typer.Option(
    "--allow-disconnected", help="Run a network that is not (strongly) connected; it cannot "
    "reach consensus, so it is refused without this.")]
ProblemName = Annotated[str, typer.Option(
    "--problem", "-p", help="two-moons, least-squares or blobs (generated locally, seeded), "
    "or nvflare-two-moons (NVFlare's example, draw for draw; needs peerflow[nvflare]).")]
Stepsize = Annotated[float | None, typer.Option(
    "--stepsize", "-a", min=0.0, help="Step size (default: the problem's).")]
LearningIterations = Annotated[int | None, typer.Option(
    "--iterations", "-i", min=0, help="Iterations to run (default: the problem's).")]
ExtraParams = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY=NUMBER",
    help="Extra algorithm parameter KEY=NUMBER, e.g. --set beta1=0.95; repeatable.")]
TorchThreads = Annotated[int, typer.Option(
    "--torch-threads", min=1, help="torch intra-op threads (1 is fastest for small models).")]
Force = Annotated[bool, typer.Option(
    "--force", help="Write into a non-empty --out: its summary.json, *.png, metrics.* and "
    "global_weights.npz are removed first (other files are kept).")]
Compress = Annotated[str | None, typer.Option(
    "--compress", metavar="SPEC",
    help="Compress what nodes send: top-k:FRACTION, random-k:FRACTION, qsgd:LEVELS or none "
    "(choco-sgd, choco-gossip, dgd; e.g. top-k:0.01).")]
Tensorboard = Annotated[Path | None, typer.Option(
    "--tensorboard", help="Folder for TensorBoard event files, written when the run ends: "
    "one run per node (DIR/<node>/), the network-wide series in DIR/_network/; needs "
    "peerflow[tensorboard].")]
MetricsFormat = Annotated[str, typer.Option(
    "--metrics-format", help="The per-iteration metrics file in --out: jsonl (metrics.jsonl, "
    "one {node, iteration, seconds, name, value} per line), csv (metrics.csv) or none.")]
NodeMetrics = Annotated[bool | None, typer.Option(
    "--node-metrics/--no-node-metrics", help="Write every node's own series to the metrics "
    "file and TensorBoard (default: up to 1000 nodes; above, the network-wide ones only).")]
CountBytes = Annotated[bool, typer.Option(
    "--count-bytes", help="In memory, count the bytes each node sends (it encodes every value "
    "it passes: about twice the run's time); over TCP and TLS they are always counted.")]
