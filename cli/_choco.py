"""``peerflow simulate choco-gossip``: average random vectors with compressed gossip."""

from __future__ import annotations

import typer

from peerflow import jobs
from peerflow.actors import DEFAULT_SYNC_TIMEOUT
from peerflow.jobs import ALGORITHMS, Job, build_network

from . import _options as opt
from . import _render as render
from ._launch import run_processes
from ._running import run_in_process, show_result


def simulate_choco_gossip(nodes: opt.Nodes = 6, topology: opt.TopologyName = "random",
                          seed: opt.Seed = 0, iterations: opt.Iterations = 50,
                          compress: opt.Compress = None, extra: opt.ExtraParams = None,
                          network: opt.NetworkFile = None,
                          transport: opt.TransportName = "memory", out: opt.Out = None,
                          sync_timeout: opt.SyncTimeout = DEFAULT_SYNC_TIMEOUT,
                          processes: opt.Processes = False,
                          allow_disconnected: opt.AllowDisconnected = False,
                          force: opt.Force = False) -> None:
    """CHOCO-gossip (its help is the registry's); --set gamma=..., dimension=..."""
    graph = build_network(topology, nodes, seed, network, algorithm="choco-gossip",
                          allow_disconnected=allow_disconnected)
    extras = {**jobs.parse_extra("choco-gossip", extra or []),
              **jobs.compress_extra("choco-gossip", ALGORITHMS["choco-gossip"].extra_keys(),
                                    compress)}
    job = Job("choco-gossip", iterations, seed, sync_timeout, graph, extra=extras,
              allow_disconnected=allow_disconnected)
    out_dir = render.claim_out(out, force)
    if processes:
        raise typer.Exit(run_processes(job, transport, out_dir))
    executors = jobs.build_executors(job)
    with render.progress_bar(iterations, "choco-gossip") as on_progress:
        result = run_in_process(job.config, executors, transport, on_progress,
                                     allow_disconnected, count_bytes=True)
    show_result(result, job.config, out_dir,
                ALGORITHMS["choco-gossip"].report(result, job, executors, out_dir))
