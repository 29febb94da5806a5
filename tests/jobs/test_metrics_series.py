"""The series a run's executors hold (``peerflow.jobs.run_series``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from peerflow.algorithms import LossRecord
from peerflow.jobs import NETWORK, run_series


def test_an_aborted_runs_uneven_histories_give_each_node_what_it_reached() -> None:
    executors = {"a": SimpleNamespace(value_history=[0.0, 1.0, 1.5]),
                 "b": SimpleNamespace(value_history=[2.0, 1.0])}
    series = {(s.node, s.name): s for s in run_series(executors)}
    assert list(series["a", "value"].values) == [0.0, 1.0, 1.5]
    assert list(series["a", "distance_to_average"].values) == [1.0, 0.0, 0.5]
    assert list(series[NETWORK, "consensus_error"].steps) == [0, 1]  # both reached these
    assert list(series[NETWORK, "consensus_error"].values) == [1.0, 0.0]


def test_vector_values_give_their_largest_entry_distance_and_no_value() -> None:
    executors = {"a": SimpleNamespace(value_history=[np.array([0.0, 4.0]), np.array([1.0, 3.0])]),
                 "b": SimpleNamespace(value_history=[np.array([2.0, 2.0]), np.array([1.0, 3.0])])}
    series = {(s.node, s.name): s for s in run_series(executors)}
    assert ("a", "value") not in series
    assert list(series["a", "distance_to_average"].values) == [1.0, 0.0]
    assert list(series[NETWORK, "consensus_error"].values) == [1.0, 0.0]


def test_losses_are_placed_at_epoch_ends_and_the_last_iteration() -> None:
    node = SimpleNamespace(train_dataloader=[None] * 4, test_accuracy=None,
                           train_loss_sequence=[(0.0, 3.0), (0.5, 2.0), (0.9, 1.0)])
    (train, mean) = run_series({"a": node}, iterations=6)
    assert (list(train.steps), list(train.values), list(train.seconds)) == \
        ([0, 4, 6], [3.0, 2.0, 1.0], [0.0, 0.5, 0.9])
    assert mean.node == NETWORK and list(mean.values) == [3.0, 2.0, 1.0]


@pytest.mark.parametrize("sequence", [
    [{"iteration": t, "seconds": s, "loss": x} for t, s, x in [(0, 0.0, 3.0), (3, 0.4, 2.0)]],
    {"iteration": [0, 3], "seconds": [0.0, 0.4], "loss": [3.0, 2.0]},
    [LossRecord(0, 0.0, 3.0), LossRecord(3, 0.4, 2.0)]],
    ids=["records", "columns", "loss-records"])
def test_labelled_loss_records_keep_their_own_iterations(sequence: object) -> None:
    node = SimpleNamespace(train_dataloader=[None] * 4, test_accuracy=None,
                           train_loss_sequence=sequence)
    (train, _) = run_series({"a": node}, iterations=6)
    assert (list(train.steps), list(train.values), list(train.seconds)) == \
        ([0, 3], [3.0, 2.0], [0.0, 0.4])


def test_agent_metrics_without_a_step_count_their_keys_records() -> None:
    node = SimpleNamespace(agent=SimpleNamespace(metrics=[
        {"key": "loss", "value": 1.0, "step": None}, {"key": "lr", "value": 0.1, "step": 7},
        {"key": "loss", "value": 0.5, "step": None}, "not a record"]))
    series = {s.name: s for s in run_series({"a": node})}
    assert list(series["loss"].steps) == [0, 1] and list(series["lr"].steps) == [7]
