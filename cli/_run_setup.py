"""What a ``peerflow simulate`` command tells its summary.json of the run's setup: the
seed, how the network was made and the transport (``peerflow.jobs.use_run_setup``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peerflow import jobs
from peerflow.actors import Network

from ._launch import network_transport


def describe_run(seed: int, topology: str, graph: Network, network_file: Path | None,
                 transport: str, processes: bool) -> None:
    """State the run's setup for its summary.json."""
    jobs.use_run_setup(jobs.RunSetup(
        seed, jobs.topology_of(topology, len(graph.nodes), seed, network_file),
        network_transport(transport) if processes else transport))


def built_in(network_file: Path | None) -> dict[str, Any]:
    """A job's ``topology``: the run's, unless it comes from a network file."""
    return {} if network_file is not None else dict(jobs.run_setup().topology)
