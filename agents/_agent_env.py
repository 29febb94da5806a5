"""Where an agent process finds its node: the environment its launcher sets."""

from __future__ import annotations

from ._agent_link import format_address
from ._agent_server import AgentServer

ADDRESS_ENV = "PEERFLOW_AGENT_ADDRESS"
AGENT_ID_ENV = "PEERFLOW_AGENT_ID"
NODE_ENV = "PEERFLOW_NODE"
HEARTBEAT_TIMEOUT_ENV = "PEERFLOW_AGENT_HEARTBEAT_TIMEOUT"


def agent_environment(server: AgentServer) -> dict[str, str]:
    """Return the environment variables that tell an agent process where its node is.

    Raises:
        RuntimeError: the server is not listening yet.
    """
    if server.address is None:
        raise RuntimeError(f"the agent server of node {server.node!r} is not listening yet")
    return {ADDRESS_ENV: format_address(server.address), AGENT_ID_ENV: server.agent_id,
            NODE_ENV: server.node, HEARTBEAT_TIMEOUT_ENV: repr(server.settings.heartbeat_timeout)}
