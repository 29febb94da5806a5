"""Both sides of the agent link's handshake: the transport's ``Hello`` and ``Welcome``.

The agent's hello names the agent (``node``: its agent id), the run it was
admitted to before (None on its first connection: the agent adopts the node's
run) and, in its settings, the id of the task it holds. The node's welcome names
the node, its run, and its heartbeat settings; its refusal says why, naming node
and agent. A reconnecting agent whose node is another run (a new process on the
same address) is refused. Each side moves a fresh ``Conversation`` of its role
with the handshake's message, so the handshake follows the same table as the rest.

Also where the node listens, how the agent dials (over TLS in secure mode; see
``_agent_tls``), and how the agent tells a refused connection.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

import anyio
from anyio.abc import SocketStream
from anyio.streams.stapled import MultiListener

from peerflow.transport import DecodeError, Gate, HandshakeError, Hello, Welcome, admit

from ._agent_link import Link, LinkSettings, format_address
from ._agent_protocol import AgentRefused
from ._states import Conversation, Message, Role

logger = logging.getLogger("peerflow.agents")

LOST = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError,
        anyio.BusyResourceError)
"""What a lost connection raises."""


def hello(agent_id: str, task_id: str | None, run: str | None) -> Hello:
    """The agent's hello; ``task_id``: the task it holds; ``run``: its run, if admitted once."""
    return Hello(agent_id, run, settings={"task": task_id})


def welcome(node: str, run: str, settings: LinkSettings) -> Welcome:
    """The node's answer to a hello it admits: its heartbeat settings for both sides."""
    return Welcome(node, run, {"heartbeat_interval": settings.heartbeat_interval,
                               "heartbeat_timeout": settings.heartbeat_timeout})


def check_hello(request: Hello, node: str, agent_id: str, run: str, busy: bool) -> str | None:
    """Return why a hello is refused, naming node and agent; None if it is admitted."""
    if request.node != agent_id:
        return f"node {node!r} refused agent {request.node!r}: it expects {agent_id!r}"
    gate = Gate(run, None, joiner=lambda _: True, connects=lambda _: True,
                connected=lambda _: busy, peer="agent")
    try:
        admit(request, gate, None)
    except HandshakeError as exc:
        return f"node {node!r} refused agent {agent_id!r}: {exc}"
    return None


def read_welcome(body: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Return ``{node, run, heartbeat_interval, heartbeat_timeout}`` from a hello's answer.

    Raises:
        AgentRefused: the node refused the agent; the message is the node's reason.
        HandshakeError: the answer is not a welcome of the agent link.
    """
    try:
        answer = Welcome.parse(body)
    except HandshakeError as exc:
        if exc.refusal is not None:
            raise AgentRefused(exc.refusal) from None
        raise
    settings = dict(answer.settings)
    for name in ("heartbeat_interval", "heartbeat_timeout"):
        value = settings.get(name)
        if type(value) not in (int, float) or not value > 0:
            raise HandshakeError(f"the welcome's {name} must be > 0 seconds, got {value!r}")
    return {"node": answer.node, "run": answer.run, **settings}


async def dial(address: tuple[str, int], context: ssl.SSLContext | None) -> Link:
    """Connect to the node (over TLS with ``context``, checking that its certificate
    names the host dialed).

    Raises:
        AgentRefused: the TLS handshake failed (the node's certificate does not verify).
        OSError: the connection failed.
    """
    try:
        return Link(await anyio.connect_tcp(*address, ssl_context=context,
                                            tls_standard_compatible=False))
    except ssl.SSLError as exc:
        raise _tls_refusal(address, exc) from exc


async def greet(link: Link, agent_id: str, task_id: str | None,
                run: str | None = None) -> tuple[Conversation, dict[str, Any]]:
    """The agent's side: say hello (``task_id``: the task it holds) and read the welcome.

    Returns the link's conversation and ``{node, run, heartbeat_interval,
    heartbeat_timeout}``; the link is closed if anything fails.

    Raises:
        AgentRefused: the node refused the agent (or its TLS certificate).
        HandshakeError: the answer is not a welcome.
    """
    wire = Conversation(Role.AGENT)
    try:
        await link.write_now(hello(agent_id, task_id, run).frame())
        try:
            settings = read_welcome(await link.receive_frame())
        except AgentRefused:
            wire.handshake(Message.REFUSAL)
            raise
        wire.handshake(Message.WELCOME)
    except (ssl.SSLError, anyio.EndOfStream) as exc:
        await _close(link)
        if not link.secure:
            raise
        # Over TLS, a node that ends the connection before its welcome refused our certificate
        # (the TLS alert saying so is not always delivered).
        raise _tls_refusal(None, exc) from exc
    except BaseException:
        await _close(link)
        raise
    return wire, settings


async def answer(link: Link, wire: Conversation, node: str, agent_id: str, run: str,
                 settings: LinkSettings, busy: bool,
                 refusal: str | None = None) -> tuple[Hello | None, str | None]:
    """The node's side: read the hello within ``heartbeat_timeout``; welcome or refuse it.

    Returns the hello if the agent is admitted, else None and why it was refused (None:
    no hello came). ``busy``: another agent holds the link; ``refusal``: why the agent is
    refused whatever it says (its TLS certificate).
    """
    try:
        with anyio.fail_after(settings.heartbeat_timeout):
            request = Hello.parse(await link.receive_frame())
        reason = (check_hello(request, node, agent_id, run, busy) if refusal is None
                  else f"node {node!r} refused agent {request.node!r}: {refusal}")
        if reason is None:
            wire.handshake(Message.HELLO)
            await link.write_now(welcome(node, run, settings).frame())
            return request, None
        logger.warning("%s", reason)
        await link.write_now(HandshakeError(reason).frame())
        return None, reason
    except (TimeoutError, DecodeError, HandshakeError, *LOST) as exc:
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


def _tls_refusal(address: tuple[str, int] | None, exc: Exception) -> AgentRefused:
    where = "the node" if address is None else f"the node at {format_address(address)}"
    why = (getattr(exc, "verify_message", None) or getattr(exc, "reason", None)
           or "the node closed the connection: it refused this trainer's certificate")
    return AgentRefused(f"TLS with {where} failed: {why} (secure mode needs the site's "
                        "startup kit from the node's project, for the host dialed)")


async def _close(link: Link) -> None:
    with anyio.CancelScope(shield=True):
        await link.aclose()
