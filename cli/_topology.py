"""``peerflow topology``: a network's weights and spectral figures, without a run."""

from __future__ import annotations

from dataclasses import asdict

import typer

from peerflow.actors import Schedule
from peerflow.algorithms import describe, describe_schedule
from peerflow.jobs import build_network, write_json

from . import _options as opt
from . import _render as render


def add_commands(app: typer.Typer) -> None:
    """Register ``topology`` on the ``peerflow`` app."""
    app.command("topology")(topology)


def topology(nodes: opt.Nodes = 6, topology: opt.TopologyName = "random", seed: opt.Seed = 0,
             network: opt.NetworkFile = None, out: opt.Out = None,
             force: opt.Force = False) -> None:
    """Print a network's weights, stochasticity and spectral gap (of a time-varying one,
    the period product's contraction); with --out, write network.json (loadable with
    --network) and topology.json (the figures)."""
    graph = build_network(topology, nodes, seed, network, allow_disconnected=True)
    out_dir = render.claim_out(out, force)
    schedule = graph.networks if isinstance(graph, Schedule) else None
    report = describe(graph) if schedule is None else describe_schedule(graph)
    rows = [(k.replace("_", " "), f"{v:.6g}" if isinstance(v, float) else str(v))
            for k, v in asdict(report).items()]
    render.print_table("topology", rows)
    for t, phase in enumerate(schedule or [graph]):
        if schedule is not None:
            typer.echo(f"iteration {t} (mod {len(schedule)}):")
        for node in phase.nodes:
            weights = ", ".join(f"{n.id}: {n.weight:.4g}" for n in node.neighbors)
            typer.echo(f"{node.id} <- {weights or '(no neighbours)'}")
    if out_dir is not None:
        write_json(out_dir / "network.json", graph.to_dict())
        write_json(out_dir / "topology.json", asdict(report))
