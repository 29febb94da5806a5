"""Where a run's network comes from (a built-in topology, or an NVFlare-shaped JSON
file), and the checks it passes before any run starts.

Every node is an actor in one process here, at a few kilobytes each plus its
history; ``MAX_NODES`` keeps a typo (``--nodes 100000000``) from growing the
process until the machine swaps.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from peerflow.actors import (
    Config,
    ConfigError,
    Network,
    check_connected,
    unweighted_nodes,
    with_default_weights,
)
from peerflow.algorithms import (
    TOPOLOGIES,
    metropolis_hastings,
    sparse_mixing_matrix,
    stochasticity_warnings,
)

from ._errors import JobError, parse_file
from ._registry import ALGORITHMS

MAX_NODES = 200_000
T = TypeVar("T")


def build_network(topology: str, nodes: int, seed: int, network_file: Path | None, *,
                  algorithm: str | None = None, allow_disconnected: bool = False) -> Network:
    """The network named by the options (``--network FILE`` wins over ``--topology``),
    checked for ``algorithm`` (see ``check_network``).

    Raises:
        JobError: unknown topology, too many nodes, unreadable or malformed file, a
            disconnected network (unless allowed).
    """
    if network_file is not None:
        network = load_network(network_file)
    else:
        network = _built_in(topology, nodes, seed)
    return check_network(network, algorithm=algorithm, allow_disconnected=allow_disconnected)


def check_network(network: Network, *, algorithm: str | None = None,
                  allow_disconnected: bool = False) -> Network:
    """Fill missing weights (Metropolis-Hastings) and say so; refuse a disconnected
    network unless allowed; warn, naming the nodes, when ``algorithm`` needs a
    doubly stochastic W and the weights do not give one.

    Raises:
        JobError: the network is not (strongly) connected and not allowed to be.
    """
    missing = unweighted_nodes(network)
    if missing:
        network = _config_step(lambda: with_default_weights(network))
        shown = ", ".join(repr(node) for node in missing[:5])
        _say("note", f"{len(missing)} nodes ({shown}{', ...' if len(missing) > 5 else ''}) "
                     "give a neighbour no weight: Metropolis-Hastings weights filled in")
    if not allow_disconnected:
        _config_step(lambda: check_connected(network),
                     hint="pass --allow-disconnected to run it anyway")
    target = ALGORITHMS[algorithm].target if algorithm in ALGORITHMS else None
    if target is not None:
        for line in stochasticity_warnings(*sparse_mixing_matrix(network)):
            _say("warning", f"{line}; {algorithm} reaches {target} only with a doubly "
                            "stochastic W")
    return network


def load_network(path: Path) -> Network:
    """Read a network from JSON: ``{"nodes": [...]}``, a whole ``{"network": ...}`` config,
    or the ``config_fed_server.json`` of an exported NVFlare P2P job (its controller's
    ``config`` argument).

    Raises:
        JobError: the file is missing, not JSON, not a valid network, or too large.
    """
    data = _controller_config(parse_file(path, "network file", json.loads,
                                         json.JSONDecodeError, "JSON"))
    section = data.get("network", data) if isinstance(data, dict) else None
    nodes = section.get("nodes") if isinstance(section, dict) else None
    if isinstance(nodes, list) and len(nodes) > MAX_NODES:
        raise JobError(f"network file {str(path)!r} has {len(nodes)} nodes; at most "
                       f"{MAX_NODES} run in one process")
    try:
        if isinstance(data, dict) and "network" in data:
            return Config.from_dict(data).network
        return Network.from_dict(data)
    except ConfigError as exc:
        raise JobError(f"network file {str(path)!r}: {exc}") from exc


def _controller_config(data: Any) -> Any:
    """The ``config`` argument of the first workflow that has one, in NVFlare's job
    config shape (``{"workflows": [{"args": {"config": {"args": {...}}}}]}``); else
    ``data`` unchanged."""
    if not isinstance(data, dict) or not isinstance(data.get("workflows"), list):
        return data
    for workflow in data["workflows"]:
        args = workflow.get("args") if isinstance(workflow, dict) else None
        config = args.get("config") if isinstance(args, dict) else None
        if isinstance(config, dict):
            return config.get("args", config)
    return data


def _built_in(topology: str, nodes: int, seed: int) -> Network:
    builder = TOPOLOGIES.get(topology)
    if builder is None:
        raise JobError(f"unknown topology {topology!r}; choose one of {sorted(TOPOLOGIES)}")
    if nodes > MAX_NODES:
        raise JobError(f"{nodes} nodes are too many: at most {MAX_NODES} run in one "
                       "process")
    try:
        return metropolis_hastings(builder(nodes, seed))
    except ValueError as exc:
        raise JobError(f"cannot build a {topology} network of {nodes} nodes: {exc}") from exc


def _config_step(step: Callable[[], T], hint: str = "") -> T:
    try:
        return step()
    except ConfigError as exc:
        raise JobError(f"{exc}; {hint}" if hint else str(exc)) from exc


def _say(kind: str, message: str) -> None:
    print(f"peerflow: {kind}: {message}", file=sys.stderr)
