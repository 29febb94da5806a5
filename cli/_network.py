"""Where a run's network comes from: a built-in topology, or an NVFlare-shaped JSON file."""

from __future__ import annotations

import json
from pathlib import Path

from peerflow.actors import Config, ConfigError, Network
from peerflow.algorithms import TOPOLOGIES, metropolis_hastings

from ._errors import CliInputError, parse_file


def build_network(topology: str, nodes: int, seed: int, network_file: Path | None) -> Network:
    """The network named by the options: ``--network FILE`` wins over ``--topology``.

    Raises:
        CliInputError: unknown topology, unreadable or malformed file.
    """
    if network_file is not None:
        return load_network(network_file)
    builder = TOPOLOGIES.get(topology)
    if builder is None:
        raise CliInputError(f"unknown topology {topology!r}; choose one of {sorted(TOPOLOGIES)}")
    try:
        return metropolis_hastings(builder(nodes, seed))
    except ValueError as exc:
        raise CliInputError(f"cannot build a {topology} network of {nodes} nodes: {exc}") from exc


def load_network(path: Path) -> Network:
    """Read a network from JSON: ``{"nodes": [...]}`` or a whole ``{"network": ...}`` config.

    Raises:
        CliInputError: the file is missing, not JSON, or not a valid network.
    """
    data = parse_file(path, "network file", json.loads, json.JSONDecodeError, "JSON")
    try:
        if isinstance(data, dict) and "network" in data:
            return Config.from_dict(data).network
        return Network.from_dict(data)
    except ConfigError as exc:
        raise CliInputError(f"network file {str(path)!r}: {exc}") from exc
