"""How a run ended: ``RunResult``, and the panic report a failing node sends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class PanicReport:
    """Why a node gave up: the reason, the node and the iteration it was at.

    Attributes:
        waiting_on: the neighbours whose values it gave up waiting for (a stall, not a
            failure of its own: the controller looks for the nodes they wait on in turn).
        roots: in the controller's verdict, every node the stall traces back to.
    """

    reason: str
    node: str | None
    iteration: int | None
    waiting_on: tuple[str, ...] = ()
    roots: tuple[str, ...] = ()

    def to_body(self) -> dict[str, Any]:
        return {"reason": self.reason, "node": self.node, "iteration": self.iteration,
                "waiting_on": list(self.waiting_on), "roots": list(self.roots)}

    @classmethod
    def from_body(cls, body: Any, sender: str) -> PanicReport:
        """Read a panic envelope's body; a malformed body still yields a report."""
        if not isinstance(body, dict):
            return cls(f"node {sender!r} panicked with a malformed report: {body!r:.200}",
                       sender, None)
        iteration = body.get("iteration")
        return cls(str(body.get("reason", "no reason given")), str(body.get("node", sender)),
                   iteration if isinstance(iteration, int) else None,
                   _names(body.get("waiting_on")), _names(body.get("roots")))


def _names(value: Any) -> tuple[str, ...]:
    """A list of node names from a message body; anything else is no names."""
    if isinstance(value, list | tuple) and all(isinstance(name, str) for name in value):
        return tuple(value)
    return ()


@dataclass(slots=True, repr=False)
class RunResult:
    """The outcome of a run.

    Attributes:
        status: "completed", "aborted", or "interrupted" (stopped by a signal).
        reason: why the run aborted, naming the node and the cause; for a stall, the
            chain of waits that leads to each root.
        node: the node the abort traces back to (the first of ``roots``).
        iteration: the iteration it was at (for a stall: the last one it sent).
        roots: every node the abort traces back to: one that failed, or the nodes that
            stalled a run and are not themselves waiting on anyone.
        results: each node's result dict (completed runs; an aborted multi-process run:
            what each node still there had reached, ``reached`` its iteration).
        timings: seconds spent configuring ("config"), running ("run") and in all ("total").
        engine: what ran the nodes: "actors" (one actor per node), or "batched" (every
            node's state stacked in one program).
    """

    status: Literal["completed", "aborted", "interrupted"]
    reason: str | None = None
    node: str | None = None
    iteration: int | None = None
    results: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    roots: tuple[str, ...] = ()
    engine: str = "actors"
    reached: dict[str, int | None] = field(default_factory=dict)

    @property
    def wall_time(self) -> float:
        """Seconds from the first config task to the last answer."""
        return self.timings.get("total", 0.0)

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    @classmethod
    def aborted(cls, report: PanicReport, timings: dict[str, float]) -> RunResult:
        roots = report.roots or (() if report.node is None else (report.node,))
        return cls("aborted", report.reason, report.node, report.iteration, timings=timings,
                   roots=roots)

    def __repr__(self) -> str:
        # The results hold every node's history: count them (a repr of a 1000-node run's
        # values takes 150 ms, and asyncio's runner makes one of its main task's result).
        return (f"RunResult(status={self.status!r}, reason={self.reason!r}, node={self.node!r}, "
                f"iteration={self.iteration!r}, results=<{len(self.results)} nodes>, "
                f"timings={self.timings!r})")

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "node": self.node,
                "iteration": self.iteration, "roots": list(self.roots), "results": self.results,
                "timings": self.timings, "wall_time": self.wall_time, "engine": self.engine}
