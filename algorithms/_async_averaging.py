"""Asynchronous averaging executors: pairwise gossip and robust push-sum.

Each node runs its ticks at its own pace (or on a ``TickSchedule``): read what its
in-neighbours sent since its last read, step, send. After its last tick it sends
its final values and adds whatever still comes (``drain``), so that no mass stays
on the way that could have arrived. The history records the estimate after every
tick (the initial value first), with the seconds since the start in ``clock``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from peerflow.actors import (
    DEFAULT_MAX_WAIT,
    DEFAULT_SYNC_TIMEOUT,
    AsyncAlgorithmExecutor,
    Latest,
    TickSchedule,
)

from ._async import (
    push_sum_absorb,
    push_sum_estimate,
    push_sum_init,
    push_sum_share,
)
from ._consensus import ValueHistory, _iterations
from ._gossip import (
    gossip_absorb,
    gossip_answer,
    gossip_init,
    gossip_messages,
    gossip_offer,
)

OnTick = Callable[[str, int, Any], None]
"""Called with (node, tick, state) after every tick, the drain included (tick -1)."""


class _AsyncAveraging(ValueHistory, AsyncAlgorithmExecutor):
    """The value history, clock and per-tick callback of an averaging executor."""

    def __init__(self, initial_value: Any, sync_timeout: float = DEFAULT_SYNC_TIMEOUT,
                 max_wait: float = DEFAULT_MAX_WAIT, schedule: TickSchedule | None = None,
                 on_tick: OnTick | None = None) -> None:
        super().__init__(sync_timeout=sync_timeout, max_wait=max_wait, schedule=schedule)
        self.initial_value = self.current_value = initial_value
        self.value_history: list[Any] = [initial_value]
        self.on_tick = on_tick
        self.state: Any = None

    def _observe(self, tick: int, state: Any, estimate: Any) -> None:
        self.state, self.current_value = state, estimate
        self.value_history.append(estimate)
        if self.on_tick is not None:
            self.on_tick(self.id, tick, state)

    def to_result(self) -> dict[str, Any]:
        """The value history and the seconds since the start at each tick."""
        return {**super().to_result(), "clock": self.clock}

    def load_result(self, result: Mapping[str, Any]) -> None:
        """Restore what ``to_result`` gave, on another executor of the same node.

        Raises:
            KeyError: the result has no value history or clock.
        """
        super().load_result(result)
        self.clock = list(result["clock"])


def _values(news: dict[str, Latest]) -> dict[str, Any]:
    return {sender: latest.value for sender, latest in news.items()}


class AsyncPushSumExecutor(_AsyncAveraging):
    """Robust asynchronous push-sum: averages over a directed graph under any delay,
    loss and wake order; the estimate x / w goes in ``value_history``.

    Args:
        initial_value: a number, numpy array or torch tensor.
        sync_timeout: seconds of silence from every live in-neighbour before panicking.
        max_wait: seconds to wait for news before stepping anyway.
        schedule: run on this seeded schedule instead of at the node's own pace.
        on_tick: called with (node, tick, state) after every tick.
    """

    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        state, out = push_sum_init(self.initial_value), self.out_neighbors
        ticks = self.ticks(_iterations(extra))
        for tick in ticks:
            news = _values(await self.read(tick))
            state = push_sum_absorb(state, news)
            if news or tick == ticks[0]:
                state, total = push_sum_share(state, len(out))
            self.post(tick, dict.fromkeys(out, state.sent), final=tick == ticks[-1])
            self._observe(tick, state, push_sum_estimate(state))
        state = push_sum_absorb(state, _values(await self.drain(ticks[-1] if ticks else -1)))
        self._observe(-1, state, push_sum_estimate(state))
        return self.to_result()


class GossipExecutor(_AsyncAveraging):
    """Randomized pairwise gossip (Boyd et al.): averages over an undirected graph; the
    value goes in ``value_history``.

    Args:
        initial_value: a number, numpy array or torch tensor.
        sync_timeout: seconds of silence from every live neighbour before panicking.
        max_wait: seconds to wait for news before stepping anyway.
        schedule: run on this seeded schedule instead of at the node's own pace.
        on_tick: called with (node, tick, state) after every tick.
        seed: seed of the partner draws when running at the node's own pace.
    """

    def __init__(self, initial_value: Any, sync_timeout: float = DEFAULT_SYNC_TIMEOUT,
                 max_wait: float = DEFAULT_MAX_WAIT, schedule: TickSchedule | None = None,
                 on_tick: OnTick | None = None, seed: int = 0) -> None:
        super().__init__(initial_value, sync_timeout, max_wait, schedule, on_tick)
        self.seed = seed

    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        neighbors, partners = undirected(self), Partners(self, self.seed)
        state, ticks = gossip_init(self.initial_value), self.ticks(_iterations(extra))
        for tick in ticks:
            news = partners.heard(await self.read(tick))
            state = gossip_answer(gossip_absorb(state, news), self.id, news)
            state = gossip_offer(state, partners.draw(tick, neighbors))
            self.post(tick, gossip_messages(state, neighbors), final=tick == ticks[-1])
            self._observe(tick, state, state.x)
        state = gossip_absorb(state, _values(await self.drain(ticks[-1] if ticks else -1)))
        self._observe(-1, state, state.x)
        return self.to_result()


class Partners:
    """A gossiping node's draws of a partner: the schedule's, else its own seeded ones
    among the neighbours that have not sent their final values."""

    def __init__(self, node: AsyncAlgorithmExecutor, seed: int) -> None:
        self.node, self.done = node, set[str]()
        self.rng = random.Random(f"{seed}/{node.id}")

    def heard(self, news: dict[str, Latest]) -> dict[str, Any]:
        """The values of ``news``, noting the senders that are done."""
        self.done |= {s for s, latest in news.items() if self.node.is_final(s)}
        return _values(news)

    def draw(self, tick: int, neighbors: Sequence[str]) -> str | None:
        """A partner for an offer at ``tick`` (None: every neighbour is done)."""
        schedule = self.node.schedule
        if schedule is not None:  # when a final value lands is no part of a schedule
            return schedule.choice(self.node.id, tick, neighbors) if neighbors else None
        live = [n for n in neighbors if n not in self.done]
        return self.rng.choice(live) if live else None


def undirected(node: AsyncAlgorithmExecutor) -> list[str]:
    """The node's neighbours, in order.

    Raises:
        ValueError: its in- and out-neighbours differ: pairwise gossip needs an
            undirected graph.
    """
    ins = sorted(n.id for n in node.neighbors)
    if ins != sorted(node.out_neighbors):
        raise ValueError(f"node {node.id!r}: pairwise gossip needs an undirected graph; "
                         f"in-neighbours {ins}, out-neighbours {sorted(node.out_neighbors)}")
    return ins
