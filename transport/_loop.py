"""The event loop every peerflow entry point runs on: anyio's asyncio backend,
on uvloop when it is installed (the TCP data plane is written for both)."""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

T = TypeVar("T")


def loop_options() -> dict[str, Any]:
    """anyio's ``backend_options`` for the asyncio backend: uvloop when installed."""
    return {"use_uvloop": importlib.util.find_spec("uvloop") is not None}


def run_loop(func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``anyio.run(func, *args)`` in a fresh event loop, on uvloop when installed."""
    return anyio.run(func, *args, backend="asyncio", backend_options=loop_options())
