"""AD-PSGD and asynchronous gradient-push: on a seeded schedule a run is the same run over
every transport, and it trains."""

from __future__ import annotations

import anyio
import numpy as np
import pytest

import peerflow
from peerflow import Config
from peerflow.actors import TickSchedule
from peerflow.algorithms import (
    ADPSGDExecutor,
    GradientPushExecutor,
    least_squares,
    metropolis_hastings,
    ring,
)

RING = metropolis_hastings(ring(4))


async def scheduled_run(kind: type, transport: str) -> tuple[list[np.ndarray], float]:
    task = least_squares(4, 0)
    schedule = TickSchedule(RING.node_ids, 160, seed=2, speeds={"site-1": 0.2}, max_delay=3,
                        drop=0.1)
    executors = {node: kind(**task.node_kwargs(i), schedule=schedule)
                 for i, node in enumerate(RING.node_ids)}
    with anyio.fail_after(120):
        result = await peerflow.run(Config(RING, {"iterations": 0, "stepsize": task.stepsize}),
                                    executors, transport)
    assert result.ok, result.reason
    start = np.mean([ex.train_loss_sequence[0].loss for ex in executors.values()])
    end = np.mean([ex.train_loss_sequence[-1].loss for ex in executors.values()])
    assert end < start / 2
    params = [np.concatenate([p.numpy().ravel() for p in ex.state.x.values()])
              for ex in executors.values()]
    return params, end


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", [ADPSGDExecutor, GradientPushExecutor])
async def test_a_scheduled_asynchronous_training_is_the_same_over_memory_and_tcp(
        kind: type) -> None:
    in_memory, loss = await scheduled_run(kind, "memory")
    over_tcp, same_loss = await scheduled_run(kind, "tcp")
    assert loss == same_loss
    for a, b in zip(in_memory, over_tcp, strict=True):
        np.testing.assert_array_equal(a, b)
