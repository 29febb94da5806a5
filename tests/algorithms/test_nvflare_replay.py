"""NVFlare's own jobs, recorded with NVFlare 2.9.0 (tests/data/*/README.md says how),
replayed on peerflow: the same network file, initial values, data and seeds."""

from __future__ import annotations

import json
import sys
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


TWO_MOONS = DATA / "nvflare_two_moons"


@pytest.mark.timeout(120)
def test_gt_on_nvflares_two_moons_gives_nvflares_losses_bit_for_bit() -> None:
    pytest.importorskip("sklearn", reason="nvflare-two-moons needs scikit-learn")
    from peerflow.jobs import Job, build_executors

    network = load_network(TWO_MOONS / "config_fed_server.json")
    recorded = json.loads((TWO_MOONS / "losses.json").read_text())
    job = Job.learning("gt", network, "nvflare-two-moons", 0, 30.0,
                       iterations=recorded["iterations"], stepsize=recorded["stepsize"])
    executors = build_executors(job)

    result = peerflow.simulate(job.config, executors)

    assert result.ok, result.reason
    compared = 0
    for node, ex in executors.items():
        for kind in ("train", "test"):
            theirs = recorded["losses"][node][kind]
            ours = [record.loss for record in getattr(ex, f"{kind}_loss_sequence")]
            assert ours[:len(theirs)] == theirs, (node, kind)
            compared += len(theirs)
    assert compared == 600


def test_nvflare_two_moons_without_scikit_learn_says_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from peerflow.jobs import JobError, build_problem

    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import fails

    with pytest.raises(JobError, match=r"scikit-learn.*pip install 'peerflow\[nvflare\]'"):
        build_problem("nvflare-two-moons", 6, 0)
