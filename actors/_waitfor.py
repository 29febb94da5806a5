"""Tracing a stall to its roots: who waits on whom, and who waits on no one.

A node that gives up waiting names the neighbours it waited for, but on a sparse
graph those are usually waiting themselves: a stall spreads along the edges, and
the node whose timer fires first is often far from the node that stopped. So the
controller does not take the first report's word: it asks every node what it
waits on (``WAIT_STATE``), follows the wait-for relation from the node that gave
up to the nodes that wait on no one (silent in their own computation, failed,
or not answering: a stopped process, a lost connection), and names those, with
the chain of waits that leads to each.

Along a chain the iterations only go down (a node waiting in iteration t has not
sent t, so whoever waits on it waits in t or later), so a snapshot has no cycles;
the walk still keeps a visited set, as the snapshot is not taken at one instant.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._result import PanicReport, _names

WAIT_STATE = "wait_state"
"""The topic of the controller's ask for a node's ``WaitState``."""

DIAGNOSIS_TIMEOUT = 1.0
"""Seconds each node has to tell the controller what it waits on."""

States = Mapping[str, "WaitState | None"]  # None: the node did not answer


@dataclass(frozen=True, slots=True)
class WaitState:
    """What one node is doing, as far as a stall is concerned.

    Attributes:
        iteration: the last iteration it sent (the one it waits in, if it waits).
        waiting_on: the neighbours whose values it still waits for (or gave up on).
        overdue: it has waited longer than half its sync timeout (or gave up).
        failure: why it stopped, if it failed on its own (not by waiting).
    """

    iteration: int | None
    waiting_on: tuple[str, ...] = ()
    overdue: bool = False
    failure: str | None = None

    def to_body(self) -> dict[str, Any]:
        return {"iteration": self.iteration, "waiting_on": list(self.waiting_on),
                "overdue": self.overdue, "failure": self.failure}

    @classmethod
    def from_body(cls, body: Any) -> WaitState | None:
        """Read an answer; None if it is not a wait state (as if it never came)."""
        if not isinstance(body, dict):
            return None
        iteration, failure = body.get("iteration"), body.get("failure")
        return cls(iteration if isinstance(iteration, int) else None,
                   _names(body.get("waiting_on")), body.get("overdue") is True,
                   failure if isinstance(failure, str) else None)


def trace(first: str, states: States) -> PanicReport | None:
    """The verdict on a stall that ``first`` reported: its roots and the chains to them.

    The walk starts at ``first``, then at every other overdue node, so that stalls
    ``first`` does not wait on are named too. None if no root is found (the nodes
    moved on while they were asked: there is no stall to name).
    """
    parents: dict[str, str | None] = {}
    roots: list[str] = []
    overdue = sorted(n for n, s in states.items() if s is not None and s.overdue and n != first)
    for source in (first, *overdue):
        if source not in parents:
            parents[source] = None
            roots += _walk(source, states, parents)
    if not roots:
        return None
    chains = [_chain(root, states, parents) for root in roots]
    return PanicReport("stalled: " + "; ".join(chains), roots[0],
                       _last_sent(roots[0], states, parents), roots=tuple(roots))


def _walk(source: str, states: States, parents: dict[str, str | None]) -> list[str]:
    """Breadth first from ``source`` along waits; the roots reached, nearest first."""
    roots: list[str] = []
    queue = deque([source])
    while queue:
        node = queue.popleft()
        state = states.get(node)
        if state is None or state.failure is not None or not state.waiting_on:
            roots.append(node)
            continue
        for peer in state.waiting_on:
            if peer not in parents:
                parents[peer] = node
                queue.append(peer)
    return roots


def _chain(root: str, states: States, parents: Mapping[str, str | None]) -> str:
    """``a waits on b (it. 6) <- b waits on root (it. 5) <- root silent since it. 4``."""
    links = [_root_link(root, states, parents)]
    node, parent = root, parents[root]
    while parent is not None:
        waiter = states[parent]
        assert waiter is not None  # only a node that answered has waits to follow
        links.append(f"{parent} waits on {node} (it. {waiter.iteration})")
        node, parent = parent, parents[parent]
    return " <- ".join(reversed(links))


def _root_link(root: str, states: States, parents: Mapping[str, str | None]) -> str:
    state = states.get(root)
    if state is not None and state.failure is not None:
        return state.failure
    since = _last_sent(root, states, parents)
    silent = "silent from the start" if since is None or since < 0 else f"silent since it. {since}"
    return f"{root} {silent}" + ("" if state is not None else ", not answering")


def _last_sent(root: str, states: States, parents: Mapping[str, str | None]) -> int | None:
    """The last iteration ``root`` sent: its own word, else one before what its waiter
    waits for (the waiter has every earlier value of it)."""
    state, parent = states.get(root), parents.get(root)
    if state is not None:
        return state.iteration
    waiter = None if parent is None else states.get(parent)
    return None if waiter is None or waiter.iteration is None else waiter.iteration - 1
