"""A seeded schedule that makes an asynchronous run reproducible.

An asynchronous run depends on which node wakes when and on when each message
lands. A ``TickSchedule`` fixes both on a global clock of ticks: tick k wakes one node
(drawn with probability proportional to its speed), and a message a node sends at
tick k to a neighbour is either lost or becomes visible at tick k + d, d in
[1, 1 + max_delay]. Every draw is a function of the seed and its arguments alone,
so every node computes the same schedule without talking to the others, and a
node can tell which value of each neighbour is the newest visible at its tick.
The executors then only wait for the messages the schedule makes visible: the
run is the same over any transport and under any real timing.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np


class TickSchedule:
    """Who wakes at each tick and the fate of each message.

    Args:
        nodes: every node id.
        ticks: the length of the run in global ticks.
        seed: seed of every draw.
        speeds: relative wake rate per node (1 for the absent ones).
        max_delay: a message becomes visible 1 to 1 + max_delay ticks after it is sent.
        drop: probability that a message is lost.

    Raises:
        ValueError: no nodes, a negative tick count or delay, a speed <= 0 or a drop
            outside [0, 1).
    """

    def __init__(self, nodes: Sequence[str], ticks: int, seed: int = 0,
                 speeds: Mapping[str, float] | None = None, max_delay: int = 0,
                 drop: float = 0.0) -> None:
        speeds = dict(speeds or {})
        rates = np.array([float(speeds.get(n, 1.0)) for n in nodes])
        if not nodes or ticks < 0 or max_delay < 0 or not 0 <= drop < 1 or (rates <= 0).any():
            raise ValueError(f"a schedule needs nodes, ticks >= 0, max_delay >= 0, drop in "
                             f"[0, 1) and speeds > 0; got {len(nodes)} nodes, {ticks} ticks, "
                             f"max_delay {max_delay}, drop {drop}, speeds {speeds}")
        self.nodes, self.ticks, self.seed = list(nodes), ticks, seed
        self.speeds, self.max_delay, self.drop = speeds, max_delay, drop
        draw = np.random.default_rng(seed).choice(len(nodes), size=ticks, p=rates / rates.sum())
        self.owners = [self.nodes[i] for i in draw]
        self._wakes: dict[str, list[int]] = {n: [] for n in nodes}
        for tick, node in enumerate(self.owners):
            self._wakes[node].append(tick)
        self.delay = lru_cache(maxsize=1 << 16)(self._delay)

    def wakes(self, node: str) -> list[int]:
        """The ticks at which ``node`` wakes, in order."""
        return self._wakes[node]

    def _delay(self, sender: str, recipient: str, tick: int) -> int | None:
        """Ticks until the message ``sender`` sends ``recipient`` at ``tick`` is visible
        (None: it is lost)."""
        draw = random.Random(f"{self.seed}/{sender}/{recipient}/{tick}")
        if draw.random() < self.drop:
            return None
        return 1 + draw.randrange(self.max_delay + 1)

    def visible(self, sender: str, recipient: str, tick: int) -> int | None:
        """The newest tick of ``sender``'s messages to ``recipient`` visible at ``tick``
        (None: none is)."""
        sent = self._wakes[sender]
        for k in reversed(sent[:bisect.bisect_left(sent, tick)]):
            delay = self.delay(sender, recipient, k)
            if delay is not None and k + delay <= tick:
                return k
        return None

    def choice(self, node: str, tick: int, options: Sequence[str]) -> str:
        """A seeded draw among ``options`` for ``node`` at ``tick`` (a gossip partner)."""
        return random.Random(f"{self.seed}/choice/{node}/{tick}").choice(list(options))

    def to_dict(self) -> dict[str, Any]:
        """The schedule's parameters, msgpack-able (``from_dict`` reads them)."""
        return {"nodes": self.nodes, "ticks": self.ticks, "seed": self.seed,
                "speeds": self.speeds, "max_delay": self.max_delay, "drop": self.drop}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TickSchedule:
        """The schedule ``to_dict`` described.

        Raises:
            ValueError: a parameter is missing or out of range.
        """
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError(f"not a schedule: {exc}") from None
