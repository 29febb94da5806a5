"""Where an agent process finds its node: the environment its launcher sets."""

from __future__ import annotations

import os
import ssl

from ._agent_link import format_address
from ._agent_server import AgentServer
from ._agent_tls import trainer_tls_context

ADDRESS_ENV = "PEERFLOW_AGENT_ADDRESS"
AGENT_ID_ENV = "PEERFLOW_AGENT_ID"
NODE_ENV = "PEERFLOW_NODE"
HEARTBEAT_TIMEOUT_ENV = "PEERFLOW_AGENT_HEARTBEAT_TIMEOUT"
WORKSPACE_ENV = "PEERFLOW_AGENT_WORKSPACE"
"""Secure mode: the folder holding the site's startup kit (FlareAgent's workspace_dir)."""


def agent_environment(server: AgentServer) -> dict[str, str]:
    """Return the environment variables that tell an agent process where its node is
    (and, in secure mode, where the site's startup kit is).

    Raises:
        RuntimeError: the server is not listening yet.
    """
    if server.address is None:
        raise RuntimeError(f"the agent server of node {server.node!r} is not listening yet")
    env = {ADDRESS_ENV: format_address(server.address), AGENT_ID_ENV: server.agent_id,
           NODE_ENV: server.node, HEARTBEAT_TIMEOUT_ENV: repr(server.settings.heartbeat_timeout)}
    if server.tls is not None:  # the trainer dials the host its kit names
        env[ADDRESS_ENV] = format_address((server.tls.host, server.address[1]))
        env[WORKSPACE_ENV] = str(server.tls.kit.folder.parent)
    return env


def environment_tls_context() -> ssl.SSLContext | None:
    """The trainer's TLS context if its launcher set a workspace (secure mode), else None.

    Raises:
        AgentKitError: the workspace holds no valid kit of ``$PEERFLOW_NODE``.
    """
    workspace = os.environ.get(WORKSPACE_ENV)
    if not workspace:
        return None
    return trainer_tls_context(workspace, os.environ.get(NODE_ENV, ""))
