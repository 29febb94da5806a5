"""The controller side: tasks sent to nodes, and the panic-abort protocol.

``Controller`` gives NVFlare's ``send_and_wait`` / ``broadcast_and_wait``.
``DistOptController`` sends each node its local config ("config"), then starts
the algorithm everywhere ("run"). The first panic a node reports decides: the
controller tells every node to abort and the run ends as ``aborted``. A panic
that only says "I gave up waiting for these neighbours" names a victim, not a
culprit: the controller first traces the stall to its roots (``_waitfor``),
asking each node what it waits on, and names those.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

import anyio
from anyio.abc import TaskGroup

from peerflow.transport import Envelope

from ._actor import Actor
from ._config import CONTROLLER_NAME, Config
from ._errors import TaskFailed
from ._local import local_configs
from ._result import PanicReport, RunResult
from ._waitfor import DIAGNOSIS_TIMEOUT, WAIT_STATE, WaitState, trace

logger = logging.getLogger("peerflow.controller")


class Controller(Actor):
    """An actor that hands tasks to target actors and collects their answers.

    Args:
        targets: the names tasks go to by default.
        name: the controller's address.
        diagnosis_timeout: seconds each target has to say what it waits on when a
            stall is traced (one that does not answer counts as stuck itself).
    """

    def __init__(self, targets: Iterable[str] = (), name: str = CONTROLLER_NAME, *,
                 diagnosis_timeout: float = DIAGNOSIS_TIMEOUT) -> None:
        super().__init__(name)
        self.targets = list(targets)
        self.diagnosis_timeout = diagnosis_timeout
        self.panic_report: PanicReport | None = None
        self._panicked = anyio.Event()
        self._tracing: PanicReport | None = None  # the stall being traced, if any
        self._failures: dict[str, str] = {}  # nodes that failed on their own meanwhile
        self._background: TaskGroup | None = None

    async def run_background(self, task_group: TaskGroup) -> None:
        self._background = task_group

    async def send_and_wait(self, task: str, data: Mapping[str, Any], *,
                            timeout: float | None, min_responses: int | None = None,
                            wait_time_after_min_received: float = 0.0) -> dict[str, Any]:
        """Send ``task`` with ``data[target]`` to each target and wait for the answers.

        Once ``min_responses`` targets answered, the others get up to
        ``wait_time_after_min_received`` more seconds (NVFlare's meaning); the asks
        still open then are cancelled (a late answer is dropped).

        Returns:
            ``{target: answer}`` for every target that answered in time.

        Raises:
            TaskFailed: fewer than ``min_responses`` (default: all) targets answered;
                the message names the ones that failed and why.
        """
        need = len(data) if min_responses is None else min_responses
        answers, failures = await self.ask_each(task, data, timeout=timeout, need=need,
                                                linger=wait_time_after_min_received)
        if len(answers) < need:
            missing = sorted(data.keys() - answers.keys() - failures.keys())
            raise TaskFailed(f"task {task!r}: {len(answers)} of {need} needed answers; "
                             f"failed: {failures}; no answer: {missing}")
        return answers

    async def broadcast_and_wait(self, task: str, data: Any = None, *,
                                 targets: Iterable[str] | None = None,
                                 timeout: float | None, min_responses: int | None = None,
                                 wait_time_after_min_received: float = 0.0
                                 ) -> dict[str, Any]:
        """Send the same ``task`` and ``data`` to every target; see ``send_and_wait``."""
        chosen = self.targets if targets is None else list(targets)
        return await self.send_and_wait(task, dict.fromkeys(chosen, data), timeout=timeout,
                                        min_responses=min_responses,
                                        wait_time_after_min_received=wait_time_after_min_received)

    def abort(self, report: PanicReport) -> None:
        """Abort the run as a node's panic would (the first abort decides)."""
        self._on_panic(report)

    def receive_now(self, envelope: Envelope) -> bool:
        if envelope.kind != "panic":
            return False
        self._on_panic(PanicReport.from_body(envelope.body, envelope.sender))
        return True

    def _on_panic(self, report: PanicReport) -> None:
        if self.panic_report is not None or self._tracing is not None:
            if report.node is not None and not report.waiting_on:
                self._failures.setdefault(report.node, report.reason)
            logger.info("later panic ignored: %s", report.reason)
        elif report.waiting_on and report.node is not None and self._background is not None:
            logger.warning("%s; tracing the stall", report.reason)
            self._tracing = report
            self._background.start_soon(self._trace, report)
        else:
            self._abort_all(report)

    async def _trace(self, report: PanicReport) -> None:
        """Ask every target what it waits on; abort naming the roots of the stall."""
        assert report.node is not None
        states = await self._wait_states()
        if states.get(report.node) is None:  # its report says what it waited on
            states[report.node] = WaitState(report.iteration, report.waiting_on, True)
        verdict = trace(report.node, states)
        self._abort_all(report if verdict is None else verdict)

    async def _wait_states(self) -> dict[str, WaitState | None]:
        """Each target's wait state; None for one that did not answer in time."""
        states: dict[str, WaitState | None] = dict.fromkeys(self.targets)
        answers, failures = await self.ask_each(WAIT_STATE, dict.fromkeys(self.targets),
                                                timeout=self.diagnosis_timeout)
        for node, answer in answers.items():
            states[node] = WaitState.from_body(answer)
        for node, why in failures.items():
            logger.warning("node %r did not say what it waits on: %s", node, why)
        for node, reason in self._failures.items():  # e.g. lost while it was asked
            known = states.get(node)
            states[node] = WaitState(None if known is None else known.iteration, failure=reason)
        return states

    def _abort_all(self, report: PanicReport) -> None:
        self.panic_report = report
        logger.error("panic at node %r iteration %s: %s", report.node, report.iteration,
                     report.reason)
        for target in self.targets:
            self.tell(target, "abort", report.to_body(), kind="abort")
        self._panicked.set()


class DistOptController(Controller):
    """Runs a distributed optimization job: "config" to each node, then "run" to all.

    Args:
        config: the network and the algorithm's ``extra`` parameters.
        config_timeout: how long each node may take to accept its config.
        run_timeout: how long the whole run may take (None: bounded by the nodes'
            own sync timeouts, which panic on any stall).
    """

    def __init__(self, config: Config, *, config_timeout: float = 10.0,
                 run_timeout: float | None = None, name: str = CONTROLLER_NAME,
                 diagnosis_timeout: float = DIAGNOSIS_TIMEOUT) -> None:
        config.network.validate()
        super().__init__(config.network.node_ids, name, diagnosis_timeout=diagnosis_timeout)
        self.config = config
        self.config_timeout = config_timeout
        self.run_timeout = run_timeout

    async def run_job(self) -> RunResult:
        """Configure every node, run the algorithm, and report how it ended."""
        started = time.perf_counter()
        timings: dict[str, float] = {}
        answers: dict[str, Any] = {}
        failure: str | None = None
        async with anyio.create_task_group() as group:
            group.start_soon(self._cancel_on_panic, group.cancel_scope)
            try:
                answers = await self._configure_and_run(timings)
            except TaskFailed as exc:
                failure = str(exc)
            if self._tracing is not None:  # every node gave up before the verdict came
                await self._panicked.wait()
            group.cancel_scope.cancel()
        timings["total"] = time.perf_counter() - started
        return self._result(answers, failure, timings)

    async def _configure_and_run(self, timings: dict[str, float]) -> dict[str, Any]:
        t0 = time.perf_counter()
        configs = {node: lc.to_dict() for node, lc in local_configs(self.config).items()}
        await self.send_and_wait("config", configs, timeout=self.config_timeout)
        t1 = time.perf_counter()
        timings["config"] = t1 - t0
        answers = await self.control_flow()
        timings["run"] = time.perf_counter() - t1
        return answers

    async def control_flow(self) -> dict[str, Any]:
        """The job once every node is configured (NVFlare's name): "run" to every node
        with ``extra``; each node's answer. A workflow (e.g. scatter and gather) overrides it.

        Raises:
            TaskFailed: a node did not answer.
        """
        return await self.broadcast_and_wait("run", dict(self.config.extra),
                                             timeout=self.run_timeout)

    async def _cancel_on_panic(self, scope: anyio.CancelScope) -> None:
        await self._panicked.wait()
        scope.cancel()

    def _result(self, answers: dict[str, Any], failure: str | None,
                timings: dict[str, float]) -> RunResult:
        if self.panic_report is not None:
            return RunResult.aborted(self.panic_report, timings)
        if failure is not None:
            return RunResult.aborted(PanicReport(failure, None, None), timings)
        ordered = {node: answers[node] for node in self.targets if node in answers}
        return RunResult("completed", results=ordered, timings=timings)
