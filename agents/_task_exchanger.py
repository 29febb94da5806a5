"""TaskExchanger: a node whose work an external agent does (NVFlare's name and shape).

The node listens on its own address for the agent with its ``agent_id`` (see
``_agent_server``) and relays each task the controller sends it to that agent,
and the agent's result back. Any failure of the agent (gone, silent, a result
whose code is not OK) goes through the panic routine, naming node, agent and cause.
A node whose agent holds a task says so when the controller traces a stall, so a
neighbour's sync timeout that comes first still ends at the agent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from anyio.abc import TaskGroup

from peerflow.actors import SyncAlgorithmExecutor, WaitState
from peerflow.transport import Envelope

from ._agent_link import LinkSettings
from ._agent_server import AgentServer
from ._agent_tls import AgentTls


class AgentHost(SyncAlgorithmExecutor):
    """An executor that owns an ``AgentServer`` (``self.agent``) for as long as it runs.

    The server listens before the actor counts as started, and a connected agent
    is told when the job is over (or aborted) as the actor stops.
    """

    agent: AgentServer

    async def run_background(self, task_group: TaskGroup) -> None:
        """Serve the agent for as long as this actor runs; started once it listens."""
        await task_group.start(self.agent.serve, self.name, self.runtime.run_id)

    def wait_state(self) -> WaitState:
        """As a node's, but a node that waits on no neighbour and whose agent holds a
        task names the agent and the task as what it is stuck on."""
        state = super().wait_state()
        pending = self.agent.pending()
        if state.waiting_on or state.failure is not None or pending is None:
            return state
        return dataclasses.replace(state, failure=pending)

    def agent_status(self) -> list[dict[str, Any]]:
        """This node's agent's status row."""
        return [self.agent.status()]

    async def on_stop(self) -> None:
        """Tell a connected agent that the job is over, or why it was aborted."""
        abort = self._abort
        reason = "the job is over" if abort is None else f"run aborted: {abort.reason}"
        await self.agent.say_goodbye(reason, aborted=abort is not None)
        await super().on_stop()


class TaskExchanger(AgentHost):
    """Relays the controller's tasks to an external agent and its results back.

    "config" configures the node as usual; "run" and every other task go to the
    agent, whose result answers the controller. A failure of the agent panics the
    run, and an abort cancels the task in flight.

    Args:
        agent_id: the id the agent must present.
        listen: where the agent connects, ``"host:port"``; port 0 picks a free one.
        heartbeat_interval: seconds between heartbeats, each way.
        heartbeat_timeout: seconds of silence after which the agent is gone; also
            how long a task waits for the agent to connect.
        peer_read_timeout: seconds for the trainer to take a task with ``get_task``
            (None: ``heartbeat_timeout``; ``math.inf``: no bound).
        task_wait_time: seconds for the agent's result (None: as long as it lives).
        resend_interval: seconds between sends of a task not yet received.
        max_resends: how many times a task is sent again (None: no limit).
        sync_timeout: seconds to wait for neighbours' values in ``exchange``.
        tls: secure mode: the site's ``AgentTls``, e.g. ``AgentTls.load(kits, "site-1")``
            (``kits``: the provision output, the site's folder or its startup folder);
            None: plain TCP.

    Raises:
        ValueError: a bad address, an empty agent_id or a non-positive time.
    """

    def __init__(self, agent_id: str, listen: str | tuple[str, int] = "127.0.0.1:0", *,
                 heartbeat_interval: float = 5.0, heartbeat_timeout: float = 60.0,
                 peer_read_timeout: float | None = None, task_wait_time: float | None = None,
                 resend_interval: float = 2.0, max_resends: int | None = None,
                 sync_timeout: float = 10.0, tls: AgentTls | None = None) -> None:
        super().__init__(sync_timeout=sync_timeout)
        settings = LinkSettings(heartbeat_interval, heartbeat_timeout, peer_read_timeout,
                                task_wait_time, resend_interval, max_resends)
        self.agent = AgentServer(agent_id, listen, settings, tls=tls)
        self._task_name = "run"

    async def handle(self, envelope: Envelope) -> Any:
        if envelope.topic == "config":
            return await super().handle(envelope)
        self._task_name = envelope.topic  # every task runs as "run" does: panic, abort
        return await self._run(envelope.body)

    async def run_algorithm(self, extra: Any) -> Any:
        """Hand the current task and its data to the agent; return its result's data."""
        return await self.agent.run_task(self._task_name, extra)


def agent_status(actors: Iterable[object]) -> list[dict[str, Any]]:
    """Return one status row per agent of ``actors`` (those that host one)."""
    return [row for actor in actors if isinstance(actor, AgentHost)
            for row in actor.agent_status()]
