"""Roles on the wire: what the controller, a node and an admin client may send each other.

The transport authenticates a connection's name (certificate or join secret)
and checks that every envelope's sender is that name; these guards say what
each name may do, as the deployment knows the roles:

- The controller hears from its nodes (registration, answers, a node's panic
  about itself only: the reporter is the connection, not a field of the body)
  and from admin clients, who may only ask the registry for ``status``.
- A node accepts connections from the controller and its neighbours only; the
  controller may send it anything (config, run, abort, routes, finish, status),
  a neighbour only its values.
"""

from __future__ import annotations

from collections.abc import Collection

from peerflow.transport import Envelope, Guard

from ._config import Network
from ._executor import VALUE_TOPIC

STATUS_TOPIC = "status"


def controller_guard(nodes: Collection[str], registry: str,
                     is_admin: Collection[str] | None = None) -> Guard:
    """The controller's guard: its ``nodes``, and admins (every other name it admits).

    Args:
        nodes: the job's node names.
        registry: the endpoint admins may ask for status.
        is_admin: admin names (None: any name that is not a node; the transport's
            joiners decide who connects at all).
    """
    node_set = frozenset(nodes)

    def connects(name: str) -> bool:
        return name in node_set or is_admin is None or name in is_admin

    def sends(peer: str, envelope: Envelope) -> str | None:
        if peer not in node_set:
            if (envelope.kind, envelope.recipient, envelope.topic) == ("ask", registry,
                                                                      STATUS_TOPIC):
                return None
            return f"admin {peer!r} may only ask {registry!r} for {STATUS_TOPIC!r}"
        if envelope.kind == "panic":
            named = envelope.body.get("node", peer) if isinstance(envelope.body, dict) else peer
            if named != peer:
                return f"node {peer!r} may only report its own panic, not {named!r}'s"
        return None

    return Guard(connects, sends)


def node_guard(node: str, controller: str, neighbours: Collection[str]) -> Guard:
    """A node's guard: the controller may send anything, ``neighbours`` their values.

    ``neighbours`` is read at each check, so a set the node fills in later (as its
    routes come) widens the guard.
    """
    def connects(name: str) -> bool:
        return name == controller or name in neighbours

    def sends(peer: str, envelope: Envelope) -> str | None:
        if peer == controller or (peer in neighbours and envelope.kind == "tell"
                                  and envelope.recipient == node
                                  and envelope.topic == VALUE_TOPIC):
            return None
        if peer in neighbours:
            return f"neighbour {peer!r} may only send its values to {node!r}"
        return f"{peer!r} is neither the controller nor a neighbour of {node!r}"

    return Guard(connects, sends)


def neighbourhoods(network: Network) -> dict[str, set[str]]:
    """Each node's neighbours: the in-neighbours it hears and the out-neighbours it tells."""
    out = network.out_neighbors()
    return {node.id: {n.id for n in node.neighbors} | set(out[node.id])
            for node in network.nodes}
