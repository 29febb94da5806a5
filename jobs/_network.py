"""Where a run's network comes from (a built-in topology or schedule, or an NVFlare-shaped
JSON file), and the checks it passes before any run starts.

A time-varying network (``Schedule``) comes from a schedule builder
(``exponential-one-peer``, ``random-matching``), from ``cycle-of-graphs:ring,star,...``
(the named topologies in turn), from a JSON file holding a list of networks, or from a
folder of network files, one per iteration of the period, in the order of their names.

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
    Schedule,
    check_connected,
    unweighted_nodes,
    with_default_weights,
)
from peerflow.algorithms import (
    SCHEDULES,
    TOPOLOGIES,
    cycle_of_graphs,
    metropolis_hastings,
    sparse_mixing_matrix,
    stochasticity_warnings,
)

from ._errors import JobError, parse_file
from ._registry import ALGORITHMS

MAX_NODES = 200_000
CYCLE = "cycle-of-graphs"
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
    network unless allowed (a schedule: not jointly connected over its period); warn,
    naming the nodes, when ``algorithm`` needs a doubly stochastic W (at every
    iteration) and the weights do not give one.

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
    graphs = network.networks if isinstance(network, Schedule) else (network,)
    for t, graph in enumerate(graphs if target is not None else ()):
        lines = stochasticity_warnings(*sparse_mixing_matrix(graph))
        where = f" (at iteration {t} of the period)" if len(graphs) > 1 else ""
        for line in lines:
            _say("warning", f"{line}{where}; {algorithm} reaches {target} only with a "
                            "doubly stochastic W")
        if lines:  # the first such network of a period says it
            break
    return network


def load_network(path: Path) -> Network:
    """Read a network from JSON: ``{"nodes": [...]}``, a whole ``{"network": ...}`` config,
    the ``config_fed_server.json`` of an exported NVFlare P2P job (its controller's
    ``config`` argument), or a time-varying one: a list of networks, or a folder of
    ``*.json`` networks (one per iteration of the period, in name order).

    Raises:
        JobError: the file is missing, not JSON, not a valid network, or too large.
    """
    if path.is_dir():
        return _load_folder(path)
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
        return Schedule.from_dict(data) if isinstance(data, list) else Network.from_dict(data)
    except ConfigError as exc:
        raise JobError(f"network file {str(path)!r}: {exc}") from exc


def _load_folder(path: Path) -> Schedule:
    files = sorted(path.glob("*.json"))
    if not files:
        raise JobError(f"network folder {str(path)!r} holds no *.json network")
    graphs = [load_network(file) for file in files]
    try:
        return cycle_of_graphs(graphs)
    except ConfigError as exc:
        raise JobError(f"network folder {str(path)!r}: {exc}") from exc


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
    name, _, parts = topology.partition(":")
    if name == CYCLE:
        return cycle_of_graphs([_built_in(part, nodes, seed) for part in _parts(parts)])
    if topology not in TOPOLOGIES and topology not in SCHEDULES:
        raise JobError(f"unknown topology {topology!r}; choose one of "
                       f"{sorted(TOPOLOGIES) + sorted(SCHEDULES) + [CYCLE + ':A,B,...']}")
    if nodes > MAX_NODES:
        raise JobError(f"{nodes} nodes are too many: at most {MAX_NODES} run in one "
                       "process")
    try:
        if topology in SCHEDULES:
            return SCHEDULES[topology](nodes, seed)
        return metropolis_hastings(TOPOLOGIES[topology](nodes, seed))
    except ValueError as exc:
        raise JobError(f"cannot build a {topology} network of {nodes} nodes: {exc}") from exc


def _parts(parts: str) -> list[str]:
    names = [part.strip() for part in parts.split(",") if part.strip()]
    if not names:
        raise JobError(f"{CYCLE} takes a list of topologies, as in {CYCLE}:ring,star,complete")
    return names


def _config_step(step: Callable[[], T], hint: str = "") -> T:
    try:
        return step()
    except ConfigError as exc:
        raise JobError(f"{exc}; {hint}" if hint else str(exc)) from exc


def _say(kind: str, message: str) -> None:
    print(f"peerflow: {kind}: {message}", file=sys.stderr)
