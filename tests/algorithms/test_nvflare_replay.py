"""NVFlare's own jobs, recorded with NVFlare 2.9.0 (tests/data/*/README.md says how),
replayed on peerflow: the same network file, initial values, data and seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import peerflow
from peerflow.actors import Config
from peerflow.jobs import consensus_executors, load_initial_values, load_network

DATA = Path(__file__).parents[1] / "data"
CONSENSUS = DATA / "nvflare_consensus"


@pytest.mark.timeout(60)
def test_consensus_on_nvflares_network_and_initial_values_gives_nvflares_values_bit_for_bit(
        transport: str) -> None:
    network = load_network(CONSENSUS / "config_fed_server.json")
    recorded = json.loads((CONSENSUS / "value_history.json").read_text())
    executors = consensus_executors(network, 0, 10.0, load_initial_values(
        CONSENSUS / "initial_values.json", network))

    result = peerflow.simulate(Config(network, {"iterations": recorded["iterations"]}),
                               executors, transport)

    assert result.ok, result.reason
    ours = {node: ex.value_history for node, ex in executors.items()}
    assert ours == recorded["value_history"]  # every value, exactly: 6 nodes x 51 values
    assert sum(map(len, ours.values())) == 306
