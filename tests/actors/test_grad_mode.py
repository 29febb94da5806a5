"""torch's grad mode is per thread: each node keeps its own across ``exchange``."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import peerflow
from peerflow import Config
from peerflow.actors import SyncAlgorithmExecutor
from peerflow.algorithms import metropolis_hastings, ring

torch = pytest.importorskip("torch")
ITERATIONS = 20


class NoGradMixer(SyncAlgorithmExecutor):
    """Mixes its neighbours' values under ``torch.no_grad()`` held across the await
    (NVFlare's executors do so); records the grad mode it finds after each one."""

    def __init__(self) -> None:
        super().__init__(sync_timeout=5.0)
        self.modes: list[bool] = []

    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        x = torch.ones(3)
        for t in range(ITERATIONS):
            with torch.no_grad():
                values = await self.exchange(x.clone(), t)
                self.modes.append(torch.is_grad_enabled())
                x = sum(values.values(), x) / (len(values) + 1)
        return {}


class GradientStepper(SyncAlgorithmExecutor):
    """Takes a gradient step with autograd after each exchange (default grad mode)."""

    def __init__(self) -> None:
        super().__init__(sync_timeout=5.0)
        self.modes: list[bool] = []

    async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
        w = torch.ones(3, requires_grad=True)
        for t in range(ITERATIONS):
            await self.exchange(w.detach().clone(), t)
            self.modes.append(torch.is_grad_enabled())
            (w * w).sum().backward()  # "element 0 of tensors does not require grad" if off
            with torch.no_grad():
                w -= 0.1 * w.grad
        return {}


async def test_a_nodes_no_grad_across_exchange_neither_leaks_nor_is_lost() -> None:
    network = metropolis_hastings(ring(4))
    holders = {"site-1": NoGradMixer(), "site-3": NoGradMixer()}
    steppers = {"site-2": GradientStepper(), "site-4": GradientStepper()}
    assert torch.is_grad_enabled()
    with anyio.fail_after(30):
        result = await peerflow.run(Config(network, {}), {**holders, **steppers})
    assert result.ok, result.reason
    assert all(mode is False for node in holders.values() for mode in node.modes)
    assert all(mode is True for node in steppers.values() for mode in node.modes)
    assert [len(node.modes) for node in (*holders.values(), *steppers.values())] == [20] * 4
    assert torch.is_grad_enabled()


async def test_a_timeout_under_no_grad_gives_the_caller_its_mode_back() -> None:
    network = metropolis_hastings(ring(3))

    class Lonely(SyncAlgorithmExecutor):
        mode: bool | None = None

        async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
            with torch.no_grad():
                try:
                    await self.exchange(0.0, 0)
                finally:
                    self.mode = torch.is_grad_enabled()
            return {}

    class Mute(SyncAlgorithmExecutor):
        async def run_algorithm(self, extra: dict[str, Any]) -> dict[str, Any]:
            await anyio.sleep_forever()
            return {}

    lonely = Lonely(sync_timeout=0.3)
    executors = [lonely, Mute(sync_timeout=0.3), Mute(sync_timeout=0.3)]
    with anyio.fail_after(10):
        result = await peerflow.run(Config(network, {}), executors)
    assert result.status == "aborted" and lonely.mode is False
    assert torch.is_grad_enabled()
