"""peerflow: an asyncio actor framework for peer-to-peer distributed optimization."""

from __future__ import annotations

from peerflow.actors import (
    Config,
    LocalConfig,
    Neighbor,
    Network,
    Node,
    RunResult,
    Schedule,
    run,
    simulate,
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
