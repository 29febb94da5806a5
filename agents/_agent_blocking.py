"""``Agent``: the blocking facade of ``AsyncAgent``, for plain synchronous trainers.

The agent's event loop runs in an anyio ``BlockingPortal`` thread (anyio's, not a
hand-rolled one): heartbeats go on while the trainer computes in its own thread,
and each call is handed to the loop and waited for. No locks: the trainer's
thread only waits on the portal.

A started agent stops at interpreter exit if the trainer did not stop it (a
script that raised between ``get_task`` and ``submit_result``, say): an ``atexit``
hook runs while the portal thread still runs, and tells the node why the trainer
ended. Without it the portal's context manager would be closed during
finalization, when the portal thread can no longer run, and the process would hang.
"""

from __future__ import annotations

import atexit
import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal

from peerflow.transport import loop_options

from ._agent import AsyncAgent
from ._flare_defs import RC, Task, TaskResult
from ._states import Call, State


class Agent:
    """The blocking agent for synchronous trainers: ``AsyncAgent`` run in a BlockingPortal.

    Same arguments, calls and errors as ``AsyncAgent``, without ``await``; use
    ``with Agent() as agent:`` or ``start()`` / ``stop()``. NVFlare's names for it,
    ``FlareAgent`` and ``FlareAgentWithCellPipe``, are this class.
    """

    def __init__(self, address: str | tuple[str, int] | None = None,
                 agent_id: str | None = None, **options: Any) -> None:
        self.agent = AsyncAgent(address, agent_id, **options)
        self._portal: BlockingPortal | None = None
        self._exit = contextlib.ExitStack()

    @property
    def task(self) -> Task | None:
        """The open task, if any."""
        return self.agent.task

    def start(self) -> None:
        """Start the event loop thread and connect; see ``AsyncAgent.start``."""
        self.agent.calls.allows(Call.START)
        with contextlib.ExitStack() as stack:
            portal = stack.enter_context(_portal())
            stack.enter_context(portal.wrap_async_context_manager(self.agent))
            self._exit = stack.pop_all()
        self._portal = portal
        atexit.register(self._stop_at_exit)

    def get_task(self, timeout: float | None = None) -> Task | None:
        """See ``AsyncAgent.get_task``."""
        return self._call(Call.GET_TASK, self.agent.get_task, timeout)  # type: ignore[no-any-return]

    def submit_result(self, result: TaskResult) -> bool:
        """See ``AsyncAgent.submit_result``."""
        return bool(self._call(Call.SUBMIT_RESULT, self.agent.submit_result, result))

    def log_metric(self, key: str, value: Any, step: int | None = None) -> None:
        """See ``AsyncAgent.log_metric``."""
        self._call(Call.LOG_METRIC, self.agent.log_metric, key, value, step)

    def receive(self, timeout: float | None = None) -> Any:
        """See ``AsyncAgent.receive``."""
        if self._portal is None and self.agent.calls.state is State.CLOSED:
            return None
        return self._call(Call.GET_TASK, self.agent.receive, timeout)

    def send(self, data: Any, meta: dict[str, Any] | None = None,
             return_code: str = RC.OK) -> bool:
        """See ``AsyncAgent.send``."""
        return self.submit_result(TaskResult(data, meta, return_code))

    def is_running(self) -> bool:
        """See ``AsyncAgent.is_running``."""
        return self.agent.is_running()

    def stop(self) -> None:
        """Stop the agent and its event loop thread; idempotent."""
        if self._portal is None:
            self.agent.calls.call(Call.STOP)
        self._close(None, None, None)

    def __enter__(self) -> Agent:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        """Stop; the node hears of an exception that ended the block."""
        self._close(*exc_info)

    def _close(self, *exc_info: Any) -> None:
        atexit.unregister(self._stop_at_exit)
        self._portal = None
        self._exit.__exit__(*exc_info)

    def _stop_at_exit(self) -> None:
        """Stop at interpreter exit; the node hears of the exception that ended the script."""
        error = getattr(sys, "last_value", None)  # set for an uncaught exception
        self._close(None if error is None else type(error), error, None)

    def _call(self, call: Call, function: Any, *args: Any) -> Any:
        if self._portal is None:  # not started, or stopped: the table says what to raise
            self.agent.calls.allows(call)
            return False  # a result or metric after stop() is dropped
        return self._portal.call(function, *args)


FlareAgent = FlareAgentWithCellPipe = Agent
"""NVFlare's names: a FlareAgent trainer runs with only its imports changed."""


@contextlib.contextmanager
def _portal() -> Iterator[BlockingPortal]:
    with start_blocking_portal("asyncio", loop_options()) as portal:
        yield portal

