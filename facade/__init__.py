"""peerflow: an asyncio actor framework for peer-to-peer distributed optimization."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from peerflow import actors
from peerflow.actors import (
    Config,
    LocalConfig,
    Neighbor,
    Network,
    Node,
    RunResult,
    Schedule,
    run,
)

__version__ = "0.1.0"

__all__ = [
    "Config",
    "LocalConfig",
    "Neighbor",
    "Network",
    "Node",
    "RunResult",
    "Schedule",
    "__version__",
    "run",
    "simulate",
]


def simulate(config: Config, executors: Mapping[str, Any] | Sequence[Any],
             transport: str | Any = "memory", *, engine: str = "actors",
             **options: Any) -> RunResult:
    """Run a job in this process and return how it ended (``peerflow.actors.run``'s options).

    Args:
        engine: "actors" (one actor per node, over ``transport``) or "batched" (every
            node's state stacked in one program, ``peerflow.algorithms.simulate_batched``):
            a run that cannot go batched says why in one line on stderr and runs on actors.

    Raises:
        ValueError: an unknown engine.
        ConfigError: the network is invalid, or the executors do not match it.
    """
    from peerflow import algorithms  # its torch-using names load on first use

    if algorithms.check_engine(engine) == "batched":
        reason = algorithms.batched_obstacle(config, executors, transport, **options)
        if reason is None:
            return algorithms.simulate_batched(
                config, executors, allow_disconnected=options.get("allow_disconnected", False),
                on_progress=options.get("on_progress"))
        print(algorithms.fallback_line(reason), file=sys.stderr)
    return actors.simulate(config, executors, transport, **options)
