"""The one way peerflow's entry points start an event loop."""

from __future__ import annotations

import asyncio
import importlib.util

from peerflow.transport import run_loop


def test_run_loop_runs_on_uvloop_exactly_when_it_is_installed() -> None:
    async def loop_module(prefix: str) -> str:
        return prefix + type(asyncio.get_running_loop()).__module__

    installed = importlib.util.find_spec("uvloop") is not None
    assert run_loop(loop_module, "loop: ").startswith("loop: uvloop") == installed
