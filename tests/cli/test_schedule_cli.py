"""Time-varying topologies on the command line: --topology names, --network lists and
folders, and ``peerflow topology`` reporting a schedule's period product."""

from __future__ import annotations

import json
from pathlib import Path

import msgpack
import pytest

from peerflow.actors import Schedule
from peerflow.algorithms import exponential_one_peer
from peerflow.cli import main
from peerflow.jobs import Job, load_job


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_topology_reports_a_schedules_product_and_writes_a_loadable_schedule(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "one-peer"
    code, stdout, _ = run_cli(capsys, "topology", "-n", "6", "-t", "exponential-one-peer",
                              "--out", str(out))
    assert code == 0 and "iteration 2 (mod 3):" in stdout and "product sigma2" in stdout
    figures = json.loads((out / "topology.json").read_text())
    assert figures["period"] == 3 and figures["messages_per_iteration"] == 6
    assert figures["product_sigma2"] == pytest.approx(0.216506, abs=1e-6)
    assert figures["rate_per_iteration"] == pytest.approx(0.216506 ** (1 / 3), abs=1e-6)
    schedule = json.loads((out / "network.json").read_text())
    assert isinstance(schedule, list) and len(schedule) == 3
    code, stdout, _ = run_cli(capsys, "topology", "--network", str(out / "network.json"))
    assert code == 0 and "iteration 2 (mod 3):" in stdout


def test_consensus_on_exponential_one_peer_averages_exactly_on_sixteen_nodes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run_cli(capsys, "simulate", "consensus", "-n", "16", "-t",
                              "exponential-one-peer", "-i", "4", "--out", str(tmp_path / "c"))
    assert code == 0 and "period 4" in stdout
    metrics = json.loads((tmp_path / "c" / "summary.json").read_text())["metrics"]
    assert metrics["final_spread"] < 1e-12 and metrics["matrix_form_error"] < 1e-12


def test_a_folder_of_networks_is_a_schedule_in_name_order(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "period"
    for k, name in enumerate(["ring", "star"]):
        assert run_cli(capsys, "topology", "-n", "5", "-t", name, "--out",
                       str(tmp_path / name))[0] == 0
        folder.mkdir(exist_ok=True)
        (folder / f"{k}.json").write_text((tmp_path / name / "network.json").read_text())
    code, stdout, _ = run_cli(capsys, "topology", "--network", str(folder))
    assert code == 0 and "iteration 1 (mod 2):" in stdout
    ring_first = stdout.index("iteration 0 (mod 2):\nsite-1 <- site-2: 0.3333, site-5: 0.3333")
    assert ring_first >= 0
    code, stdout, _ = run_cli(capsys, "simulate", "consensus", "--network", str(folder), "-i",
                              "30", "--out", str(tmp_path / "run"))
    metrics = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]
    assert code == 0 and metrics["matrix_form_error"] < 1e-12


@pytest.mark.parametrize(("args", "message"), [
    (["-t", "cycle-of-graphs:"], "cycle-of-graphs takes a list of topologies"),
    (["-t", "cycle-of-graphs:ring,blob"], "unknown topology 'blob'"),
    (["-t", "exponential-two-peer"], "exponential-one-peer"),
])
def test_bad_schedule_names_get_one_clear_line(
        args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "simulate", "consensus", "-n", "4", *args)
    assert code == 2 and message in err and "Traceback" not in err


def test_a_schedule_over_different_nodes_is_refused_naming_the_network(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = {"nodes": [{"id": "a", "neighbors": [{"id": "b", "weight": 0.5}]},
                     {"id": "b", "neighbors": [{"id": "a", "weight": 0.5}]}]}
    two = {"nodes": [{"id": "a", "neighbors": []}, {"id": "c", "neighbors": []}]}
    path = tmp_path / "schedule.json"
    path.write_text(json.dumps([one, two]))
    code, _, err = run_cli(capsys, "simulate", "consensus", "--network", str(path))
    assert code == 2 and "schedule network 1 has nodes ['a', 'c']" in err


def test_nids_trains_least_squares_from_the_command_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "simulate", "nids", "--problem", "least-squares", "-n", "4",
                           "-t", "ring", "-i", "300", "--out", str(tmp_path / "nids"))
    assert code == 0, err
    metrics = json.loads((tmp_path / "nids" / "summary.json").read_text())["metrics"]
    assert metrics["distance_to_optimum"] < 1e-6


def test_a_job_on_a_schedule_reaches_node_processes_and_job_files_whole(tmp_path: Path) -> None:
    job = Job("consensus", 5, 0, 10.0, exponential_one_peer(4))
    spec = msgpack.unpackb(msgpack.packb(job.spec()))  # as a node process receives it
    assert Job.from_spec(spec) == job and isinstance(Job.from_spec(spec).network, Schedule)
    file = tmp_path / "job.toml"
    file.write_text(job.to_toml(tmp_path / "network.json"))
    assert load_job(file) == job


def test_a_period_with_a_network_that_is_not_doubly_stochastic_is_named_in_a_warning(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "simulate", "consensus", "-n", "6", "-i", "3", "-t",
                           "cycle-of-graphs:ring,random-directed")
    assert code == 0 and "W is not column stochastic" in err
    assert "(at iteration 1 of the period)" in err
