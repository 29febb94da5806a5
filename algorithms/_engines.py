"""The engines a simulation runs on, and the line a run that cannot go batched prints.

Torch-free, so that the command line can say which engine runs before torch loads.
"""

from __future__ import annotations

ENGINES = ("actors", "batched")
"""``actors``: one actor per node, exchanging over a transport; ``batched``: every
node's state stacked in one program (``simulate_batched``)."""


def check_engine(engine: str) -> str:
    """``engine``, if it is one of ``ENGINES``.

    Raises:
        ValueError: it is not.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
    return engine


def fallback_line(reason: str) -> str:
    """The line a run that asked for the batched engine prints when it runs on actors."""
    return f"peerflow: cannot run batched ({reason}): running the actor engine"
