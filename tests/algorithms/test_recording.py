"""Recording losses never changes training: on, off or every k iterations, the same
batches and so the same parameters, bit for bit, on both engines."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import peerflow
from peerflow import Config
from peerflow.algorithms import (
    GTExecutor,
    flatten,
    metropolis_hastings,
    ring,
    simulate_batched,
    two_moons,
)

NETWORK = metropolis_hastings(ring(3))
CONFIG = Config(NETWORK, {"iterations": 25, "stepsize": 0.05})  # 2.5 epochs of 10 batches
PROBLEM = two_moons(3, seed=2)


def trained(engine: str, **kwargs: Any) -> tuple[np.ndarray, list[int]]:
    """Final parameters of every node, and how many train losses node 0 recorded."""
    executors = {node: GTExecutor(**{**PROBLEM.node_kwargs(i), **kwargs})
                 for i, node in enumerate(NETWORK.node_ids)}
    run = simulate_batched if engine == "batched" else peerflow.simulate
    result = run(CONFIG, executors)
    assert result.ok, result.reason
    first = next(iter(executors.values()))
    return (np.array([flatten(ex.state.x) for ex in executors.values()]),
            [len(first.train_loss_sequence), len(first.test_loss_sequence)])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("engine", ["actors", "batched"])
def test_recording_on_off_or_every_k_iterations_trains_on_the_same_batches(engine: str) -> None:
    per_epoch, counts = trained(engine)
    assert counts == [1 + 2 + 1, 1 + 2 + 1]  # start, two epoch ends, the last iteration

    for every, records in ((0, 2), (1, 1 + 25), (7, 1 + 3 + 1)):
        params, counts = trained(engine, record_every=every)
        assert counts == [records, records]
        assert np.array_equal(params, per_epoch), every  # bit for bit


@pytest.mark.timeout(120)
def test_reading_the_train_loss_through_the_training_loader_would_change_the_batches() -> None:
    """What the evaluation loader prevents: a record drawing a shuffle from the generator
    that picks the training batches (NVFlare's executors read the train loss so)."""
    ours, _ = trained("actors", record_every=0)
    through_training = {"train_eval_dataloader": None}

    quiet, _ = trained("actors", record_every=0, **through_training)
    loud, _ = trained("actors", record_every=1, **through_training)

    assert np.array_equal(quiet, loud) is False
    assert np.array_equal(ours, quiet) is False  # the start's record drew a shuffle too
