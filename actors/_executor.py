"""Executors: one per node, running a synchronous algorithm iteration by iteration.

The executor takes two tasks from the controller: "config" (its ``LocalConfig``)
and "run" (``extra``). ``exchange`` sends this iteration's value to every
out-neighbour and awaits every in-neighbour's value through the per-iteration
mailbox. Any failure inside the run — an exception, a sync timeout, a neighbour
in breach — goes through ``panic``: the controller is told, and it aborts all.
A node that gave up waiting names whom it waited for, and answers the
controller's ``wait_state`` ask on the delivery path (its task is busy running),
so that the controller can trace a stall to the node that caused it.

torch's grad mode is per thread, and every node of a process shares the thread:
``exchange`` keeps the caller's mode across the await and leaves torch's default
(enabled) while the node is suspended, so ``with torch.no_grad(): await
self.exchange(...)`` (NVFlare's shape) neither loses its mode nor lends it out.
actors never imports torch: this applies if torch is loaded when the run starts
(after ``_pre_algorithm_run``); without torch, ``exchange`` costs nothing more.
"""

from __future__ import annotations

import logging
import sys
from abc import ABC, abstractmethod
from collections.abc import Awaitable
from types import ModuleType
from typing import Any

import anyio

from peerflow.transport import Envelope

from ._actor import Actor, _describe
from ._config import Neighbor
from ._errors import RunAborted, RunStopped, SyncTimeout
from ._local import LocalConfig, LocalPhase
from ._mailbox import IterationMailbox, ScheduledMailbox
from ._result import PanicReport
from ._waitfor import WAIT_STATE, WaitState

logger = logging.getLogger("peerflow.executor")

VALUE_TOPIC = "value"
DEFAULT_SYNC_TIMEOUT = 10.0
"""Seconds an executor waits for its neighbours' values of one iteration by default."""


class SyncAlgorithmExecutor(Actor, ABC):
    """Base class of synchronous peer-to-peer algorithms (NVFlare's name and shape).

    Subclasses implement ``run_algorithm``; they read ``self.id``,
    ``self.neighbors`` (in-neighbours with weights), ``self.weight`` (the self
    weight) and ``self.out_neighbors``, and call ``await self.exchange(value, t)``.
    On a time-varying network those are the union graph's; ``self.phase(t)`` gives
    iteration t's, and ``exchange`` sends to and gathers from iteration t's alone.

    Args:
        sync_timeout: seconds to wait for all neighbours' values of one iteration.
        max_ahead: how many iterations ahead a neighbour's values may be buffered.
    """

    def __init__(self, sync_timeout: float = DEFAULT_SYNC_TIMEOUT, max_ahead: int = 1000) -> None:
        super().__init__()
        if sync_timeout <= 0:
            raise ValueError(f"sync_timeout must be > 0 seconds, got {sync_timeout}")
        self.sync_timeout = sync_timeout
        self.max_ahead = max_ahead
        self.config: LocalConfig | None = None
        self.neighbors: list[Neighbor] = []
        self.out_neighbors: list[str] = []
        self.iteration: int | None = None
        self._weight = 1.0
        self._in_ids: frozenset[str] = frozenset()
        self._phases: tuple[LocalPhase, ...] = ()
        self._routes: tuple[tuple[list[str], frozenset[str]], ...] | None = None  # per phase
        self._mailbox: IterationMailbox | None = None
        self._controller: str | None = None
        self._run_scope: anyio.CancelScope | None = None
        self._abort: PanicReport | None = None
        self._gave_up: PanicReport | None = None  # its own panic, not the controller's abort
        self._stopping = False  # see stop
        self._torch: ModuleType | None = None  # torch, if the process had loaded it by the run

    @property
    def id(self) -> str:
        """This node's id (its actor name)."""
        return self.name

    @property
    def weight(self) -> float:
        """The self weight: 1 minus the sum of the in-neighbours' weights."""
        return self._weight

    @property
    def period(self) -> int:
        """Iterations after which the network repeats: 1 unless it is time-varying."""
        return len(self._phases) or 1

    def phase(self, iteration: int) -> LocalPhase:
        """This node's in-neighbours (with weights) and out-neighbours at ``iteration``:
        always the same on a static network, ``iteration mod period``'s on a schedule."""
        if not self._phases:
            return LocalPhase(tuple(self.neighbors), tuple(self.out_neighbors))
        return self._phases[iteration % len(self._phases)]

    @abstractmethod
    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        """Run the algorithm and return this node's result (msgpack-able values)."""

    async def _pre_algorithm_run(self, extra: dict[str, Any]) -> None:
        """Called before ``run_algorithm`` (NVFlare's hook)."""

    async def _post_algorithm_run(self, extra: dict[str, Any]) -> None:
        """Called after ``run_algorithm`` returned (NVFlare's hook)."""

    def exchange(self, value: Any, iteration: int) -> Awaitable[dict[str, Any]]:
        """Send ``value`` to every out-neighbour; await it for ``{in_neighbour: value}``.

        A plain method returning the mailbox's awaitable, not a coroutine: one
        frame fewer for every node to resume each iteration.

        Neighbours receive ``value`` as it is now: the transport copies its mutable
        buffers once (``Transport.send_values``), so it may be updated in place at once.

        Raises:
            SyncTimeout: a neighbour's value did not arrive within ``sync_timeout``.
            MailboxBreach: a neighbour ran too far ahead.
        """
        if self._stopping:
            raise RunStopped(self.id)
        if self._abort is not None:
            # Cancellation reaches a task only while it waits on an unresolved future: a
            # node whose neighbours keep feeding it would run on, so it waits here instead.
            return anyio.sleep_forever()
        self.iteration = iteration
        out, ins, routes = self.out_neighbors, self._in_ids, self._routes
        if routes is not None:
            out, ins = routes[iteration % len(routes)]
        runtime = self.runtime
        runtime.transport.send_values(self.name, out, VALUE_TOPIC, iteration, value,
                                      runtime.run_id)
        assert self._mailbox is not None, "exchange() before the node was configured"
        gathering = self._mailbox.gather(iteration, ins, self.sync_timeout)
        torch = self._torch
        return gathering if torch is None else _keeping_grad_mode(gathering, torch)

    def panic(self, reason: str, waiting_on: tuple[str, ...] = ()) -> None:
        """Give up the run: tell the controller, which aborts every node, and stop here.

        Args:
            reason: why, naming this node.
            waiting_on: the neighbours it gave up waiting for, if that is why.
        """
        report = PanicReport(reason, self.id, self.iteration, tuple(waiting_on))
        if self._controller is not None and self._abort is None:
            self.tell(self._controller, "panic", report.to_body(), kind="panic")
        self._gave_up = self._gave_up or report
        self._abort = self._abort or report
        if self._run_scope is not None:
            self._run_scope.cancel()

    def wait_state(self) -> WaitState:
        """What this node waits on, for tracing a stall: the gather it is in (or stopped
        in), else why it stopped on its own, else nothing (it is computing, or stuck)."""
        own = self._gave_up
        iteration, missing, overdue = (None, [], False) if self._mailbox is None else \
            self._mailbox.waiting_on()
        if iteration is not None and iteration == self.iteration:
            gave_up_on = () if own is None else own.waiting_on  # if the late values came
            return WaitState(iteration, tuple(missing) or gave_up_on, overdue or own is not None)
        if own is not None:
            return WaitState(self.iteration, failure=own.reason)
        return WaitState(self.iteration)

    def agent_status(self) -> list[dict[str, Any]]:
        """Status rows of the external agents this node hosts, for ``peerflow status``
        (none here; an executor that hosts an agent adds its row)."""
        return []

    # -- message handling -------------------------------------------------
    def _deliver(self, envelope: Envelope) -> None:
        # Values that come as envelopes (strict mode, TCP, before "config"); in memory,
        # send_values hands them to the mailbox's put directly (registered in _configure).
        if envelope.topic != VALUE_TOPIC or envelope.kind != "tell":
            super()._deliver(envelope)
        elif self._mailbox is not None and envelope.iteration is not None:
            self._mailbox.put(envelope.sender, envelope.iteration, envelope.body)
        else:
            logger.warning("node %r dropped a value from %r: %s", self.name, envelope.sender,
                           "not configured yet" if self._mailbox is None else "no iteration")

    def receive_now(self, envelope: Envelope) -> bool:
        if envelope.kind == "abort":
            if envelope.sender == self._controller:
                self._on_abort(PanicReport.from_body(envelope.body, envelope.sender))
            else:
                logger.warning("node %r dropped an abort from %r: only its controller %r may "
                               "abort it", self.name, envelope.sender, self._controller)
            return True
        if envelope.kind == "ask" and envelope.topic == WAIT_STATE:
            if envelope.sender == self._controller:
                self._answer(envelope, "reply", self.wait_state().to_body())
            else:
                self._answer(envelope, "error", f"node {self.name!r} tells only its controller "
                             f"{self._controller!r} what it waits on, not {envelope.sender!r}")
            return True
        return False

    async def handle(self, envelope: Envelope) -> Any:
        if envelope.topic == "config":
            self._configure(envelope.sender, LocalConfig.from_dict(envelope.body))
            return "ok"
        if envelope.topic == "run":
            return await self._run(dict(envelope.body or {}))
        raise ValueError(f"node {self.id!r} has no task named {envelope.topic!r}")

    def _configure(self, controller: str, config: LocalConfig) -> None:
        self._controller = controller
        self.config = config
        self.neighbors = list(config.neighbors)
        self.out_neighbors = list(config.out_neighbors)
        self._weight = 1.0 - sum(n.weight or 0.0 for n in self.neighbors)
        self._in_ids = frozenset(n.id for n in self.neighbors)
        self._phases = config.phases
        if config.phases:
            self._routes = tuple((list(p.out_neighbors), frozenset(n.id for n in p.neighbors))
                                 for p in config.phases)
            self._mailbox = ScheduledMailbox(self.id, [ins for _, ins in self._routes],
                                             self.max_ahead)
        else:
            self._routes = None
            self._mailbox = IterationMailbox(self.id, self._in_ids, self.max_ahead)
        self.runtime.transport.register_values(self.name, VALUE_TOPIC, self._mailbox.put)
        self._abort = self._gave_up = None
        self._stopping = False

    async def _run(self, extra: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        with anyio.CancelScope() as scope:
            self._run_scope = scope
            if self._abort is not None:
                scope.cancel()
            try:
                await self._pre_algorithm_run(extra)
                self._torch = sys.modules.get("torch")  # whoever uses it loaded it by now
                result = await self.run_algorithm(extra)
                await self._post_algorithm_run(extra)
            except Exception as exc:
                missing = exc.missing if isinstance(exc, SyncTimeout) else []
                self.panic(_panic_reason(self.id, exc), tuple(missing))
        self._run_scope = None
        if self._abort is not None:
            raise RunAborted(self._abort.reason)
        return result

    def stop(self) -> None:
        """Exchange no more: the run ends with ``RunStopped`` in ``exchange`` (now, if it
        waits there), without an answer.

        Call it on every node before cancelling a run (the runtime does when it
        closes): a cancelled run that still exchanges stops one hop per event-loop
        pass, which at thousands of nodes takes minutes.
        """
        self._stopping = True
        if self._mailbox is not None:
            self._mailbox.stop()

    def _close_inbox(self) -> None:
        self.stop()
        super()._close_inbox()

    def _on_abort(self, report: PanicReport) -> None:
        self._abort = self._abort or report
        if self._run_scope is not None:
            self._run_scope.cancel()


async def _keeping_grad_mode(gathering: Awaitable[dict[str, Any]], torch: ModuleType
                             ) -> dict[str, Any]:
    """Await ``gathering`` with torch's default grad mode; give the caller back its own."""
    enabled = torch.is_grad_enabled()
    if not enabled:
        torch.set_grad_enabled(True)
    try:
        return await gathering
    finally:
        if torch.is_grad_enabled() != enabled:
            torch.set_grad_enabled(enabled)


def _panic_reason(node: str, exc: BaseException) -> str:
    text = _describe(exc)
    return text if repr(node) in text else f"node {node!r}: {text}"
