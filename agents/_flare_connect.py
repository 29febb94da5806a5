"""How an agent reaches its node: connect, be admitted, and retry while the node may come.

NVFlare's FlareAgent and its site may start in either order: "whichever is started
first waits for the other for heartbeat_timeout seconds". The agent's side of that is
here: it tries every ``resend_interval`` until its own ``heartbeat_timeout`` has
passed (or ``max_resends`` retries failed). Once admitted, it sends heartbeats at its
own ``heartbeat_interval``, or the node's if that is shorter, so the node always hears
it in time; it judges the node by its own ``heartbeat_timeout``, whatever the node's.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import anyio

from peerflow.transport import DecodeError, HandshakeError

from . import _agent_protocol as proto
from . import _handshake as handshake
from ._agent_link import Link, format_address
from ._agent_protocol import AgentClosed, AgentProtocolError, AgentRefused
from ._flare_options import AgentOptions
from ._states import Conversation

logger = logging.getLogger("peerflow.agents")

_RETRY = (OSError, TimeoutError, anyio.EndOfStream, anyio.BrokenResourceError, DecodeError,
          AgentProtocolError, HandshakeError)


@dataclass(frozen=True, slots=True)
class Admission:
    """An admitted connection: its link and conversation, the node and its run, the
    heartbeat pace."""

    link: Link
    wire: Conversation
    node: str
    run: str
    heartbeat_interval: float


async def connect(options: AgentOptions, seen: str | None, run: str | None, since: float, *,
                  once_admitted: bool = False) -> Admission:
    """Connect and be admitted, retrying until ``heartbeat_timeout`` after ``since``.

    Args:
        options: the agent's options.
        seen: the id of the task the agent holds, if any (the node resends it if not).
        run: the run the agent was admitted to before, if any (another run refuses it).
        since: ``anyio.current_time()`` the wait counts from.
        once_admitted: the agent was admitted before: a refused connection means the
            node's process ended, so the retries end at once.

    Raises:
        AgentRefused: the node refused the agent (or its TLS certificate), or another node
            than its site answered.
        AgentClosed: no node admitted the agent in time.
    """
    timeout, address = options.heartbeat_timeout, format_address(options.address)
    deadline, attempts = since + timeout, 0
    while True:
        attempts += 1
        try:
            with anyio.fail_after(max(deadline - anyio.current_time(), 0.1)):
                link = await handshake.dial(options.address, options.ssl_context)
                return await _admit(link, options, seen, run)
        except _RETRY as exc:
            error = exc
        if once_admitted and handshake.refused(error):
            raise AgentClosed(f"nothing listens at {address} any more (its process ended)")
        if (anyio.current_time() + options.resend_interval > deadline
                or (options.max_resends is not None and attempts > options.max_resends)):
            raise AgentClosed(f"no node admitted agent {options.agent_id!r} at {address} "
                              f"within {timeout:g} s ({attempts} attempts; {error!r})")
        await anyio.sleep(options.resend_interval)


async def _admit(link: Link, options: AgentOptions, seen: str | None,
                 run: str | None) -> Admission:
    wire, settings = await handshake.greet(link, options.agent_id, seen, run)
    node, interval = str(settings["node"]), float(settings["heartbeat_interval"])
    if options.site_name is not None and node != options.site_name:
        why = (f"agent {options.agent_id!r} is for site {options.site_name!r}, but node "
               f"{node!r} answered at {format_address(options.address)}")
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(*handshake.LOST):  # the node learns why, if it can
                await link.write_now(proto.goodbye(options.agent_id, node, why))
            await link.aclose()
        raise AgentRefused(why)
    if interval >= options.heartbeat_timeout:
        logger.warning("node %r sends heartbeats every %g s, but agent %r gives it up after "
                       "%g s of silence", node, interval, options.agent_id,
                       options.heartbeat_timeout)
    return Admission(link, wire, node, str(settings["run"]),
                     min(options.heartbeat_interval, interval))
