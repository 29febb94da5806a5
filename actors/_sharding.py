"""Cutting a job into shards, and what a shard and the controller may send each other.

A shard is a process hosting a block of consecutive nodes behind one network
endpoint named after it (see ``_shards``). Its transport carries its nodes'
names (``shard_of``); these guards say what may cross: the controller sends a
shard anything, a shard sends another shard only its nodes' values, and a shard
reports the panics of its own nodes only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from peerflow.transport import Envelope, Guard

from ._config import Network
from ._controller import CONTROLLER_NAME
from ._executor import VALUE_TOPIC


def split_nodes(node_ids: Sequence[str], count: int) -> dict[str, list[str]]:
    """``count`` shards ``shard-0`` ... of consecutive nodes, sizes differing by one at most
    (a ring or a path then crosses a shard boundary ``count`` times only).

    Raises:
        ValueError: ``count`` is below 1 or above the number of nodes.
    """
    if not 1 <= count <= len(node_ids):
        raise ValueError(f"cannot split {len(node_ids)} nodes into {count} shards")
    size, rest = divmod(len(node_ids), count)
    shards, start = {}, 0
    for index in range(count):
        end = start + size + (index < rest)
        shards[f"shard-{index}"] = list(node_ids[start:end])
        start = end
    return shards


def shard_of(shards: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Which shard carries each node."""
    return {node: shard for shard, nodes in shards.items() for node in nodes}


def shard_routes(network: Network, shards: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    """For each shard, the other shards its nodes send to or hear from."""
    owner = shard_of(shards)
    peers: dict[str, set[str]] = {shard: set() for shard in shards}
    for node in network.nodes:
        for neighbour in node.neighbors:
            a, b = owner[node.id], owner[neighbour.id]
            if a != b:
                peers[a].add(b)
                peers[b].add(a)
    return peers


def shard_controller_guard(shards: Mapping[str, Sequence[str]]) -> Guard:
    """The controller's guard: only shards connect; a panic names a node of its shard."""
    owner = shard_of(shards)

    def sends(peer: str, envelope: Envelope) -> str | None:
        if envelope.kind == "panic" and isinstance(envelope.body, dict):
            named = envelope.body.get("node")
            if named is not None and owner.get(named) != peer:
                return f"shard {peer!r} may only report its own nodes' panics, not {named!r}'s"
        return None

    return Guard(shards.__contains__, sends)


def shard_guard(shards: Mapping[str, Sequence[str]]) -> Guard:
    """A shard's guard: the controller may send anything, other shards their values."""
    def connects(name: str) -> bool:
        return name == CONTROLLER_NAME or name in shards

    def sends(peer: str, envelope: Envelope) -> str | None:
        if peer == CONTROLLER_NAME or (envelope.kind == "tell"
                                       and envelope.topic == VALUE_TOPIC):
            return None
        return f"shard {peer!r} may only send its nodes' values"

    return Guard(connects, sends)
