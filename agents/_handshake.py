"""Both sides of the agent link's handshake: the agent's hello, the node's welcome or refusal.

Also where the node listens, and how the agent tells a refused connection.

Each side reads the other's first message through a fresh ``Conversation`` of its
role, so the handshake moves the same table the rest of the link does.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
from anyio.abc import SocketStream
from anyio.streams.stapled import MultiListener

from peerflow.transport import DecodeError, Envelope

from . import _agent_protocol as proto
from ._agent_link import Link, LinkSettings, format_address
from ._states import Conversation, Role

logger = logging.getLogger("peerflow.agents")

LOST = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError,
        anyio.BusyResourceError)
"""What a lost connection raises."""


async def greet(link: Link, agent_id: str, task_id: str | None) -> tuple[Conversation,
                                                                        dict[str, Any]]:
    """The agent's side: say hello (``task_id``: the task it holds) and read the welcome.

    Returns the link's conversation and ``{node, heartbeat_interval, heartbeat_timeout}``;
    the link is closed if anything fails.

    Raises:
        AgentRefused: the node refused the agent.
        AgentProtocolError: the answer is not a welcome.
    """
    wire = Conversation(Role.AGENT)
    try:
        await link.write_now(proto.hello(agent_id, task_id))
        answer = await link.receive()
        settings = proto.read_welcome(answer)
        wire.receive(answer)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await link.aclose()
        raise
    return wire, settings


async def answer(link: Link, wire: Conversation, node: str, agent_id: str,
                 settings: LinkSettings, busy: bool) -> tuple[Envelope | None, str | None]:
    """The node's side: read the hello within ``heartbeat_timeout``; welcome or refuse it.

    Returns the hello if the agent is admitted, else None and why it was refused (None:
    no hello came). ``busy``: another agent holds the link.
    """
    try:
        with anyio.fail_after(settings.heartbeat_timeout):
            request = await link.receive()
        reason = proto.check_hello(request, node, agent_id)
        if reason is None:
            wire.receive(request)
        if reason is None and busy:
            reason = f"agent {agent_id!r} is already connected to node {node!r}"
        if reason is None:
            await link.write_now(proto.welcome(request, node, settings.heartbeat_interval,
                                               settings.heartbeat_timeout))
            return request, None
        logger.warning("%s", reason)
        await link.write_now(proto.refusal(request, node, reason))
        return None, reason
    except (TimeoutError, DecodeError, *LOST) as exc:
        logger.warning("node %r dropped a connection without a hello: %r", node, exc)
    return None, None


async def listen(address: tuple[str, int], node: str, agent_id: str) -> MultiListener[SocketStream]:
    """Listen on ``address`` for ``node``'s agent.

    Raises:
        OSError: cannot listen; the message names the node, the agent and the address.
    """
    try:
        return await anyio.create_tcp_listener(local_host=address[0], local_port=address[1])
    except OSError as exc:
        raise OSError(exc.errno, f"node {node!r} cannot listen for agent {agent_id!r} on "
                      f"{format_address(address)}: {exc.strerror or exc}") from exc


def refused(error: BaseException) -> bool:
    """True if ``error`` (anyio wraps the attempts' errors) is a refused connection."""
    return isinstance(error, ConnectionRefusedError) or isinstance(
        error.__cause__, ConnectionRefusedError)
