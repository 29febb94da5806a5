"""Inputs that cannot work are one line and exit 2 before any run; flaws are named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peerflow.actors import Network
from peerflow.cli import main
from peerflow.jobs import consensus_executors

PAIRS = {"nodes": [{"id": "a", "neighbors": [{"id": "b", "weight": 0.5}]},
                   {"id": "b", "neighbors": [{"id": "a", "weight": 0.5}]},
                   {"id": "c", "neighbors": [{"id": "d", "weight": 0.5}]},
                   {"id": "d", "neighbors": [{"id": "c", "weight": 0.5}]}]}
SKEWED = {"nodes": [{"id": "a", "neighbors": [{"id": "b", "weight": 0.9}]},
                    {"id": "b", "neighbors": [{"id": "a", "weight": 0.1},
                                              {"id": "c", "weight": 0.1}]},
                    {"id": "c", "neighbors": [{"id": "b", "weight": 0.5}]}]}
UNWEIGHTED = {"nodes": [{"id": "a", "neighbors": [{"id": "b"}]},
                        {"id": "b", "neighbors": [{"id": "a", "weight": None}, {"id": "c"}]},
                        {"id": "c", "neighbors": [{"id": "b"}]}]}
DEPTH = 100_000


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(folder: Path, name: str, text: str) -> str:
    (folder / name).write_text(text)
    return str(folder / name)


def test_a_disconnected_network_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    network = write(tmp_path, "pairs.json", json.dumps(PAIRS))
    code, _, stderr = run_cli(capsys, "simulate", "consensus", "--network", network)
    assert code == 2
    assert stderr.count("\n") == 1 and "not connected: 2 groups" in stderr
    assert "--allow-disconnected" in stderr


def test_a_disconnected_network_runs_with_allow_disconnected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    network = write(tmp_path, "pairs.json", json.dumps(PAIRS))
    code, stdout, _ = run_cli(capsys, "simulate", "consensus", "--network", network,
                              "--iterations", "3", "--sync-timeout", "2",
                              "--allow-disconnected")
    assert code == 0 and "completed" in stdout


def test_weights_that_are_not_doubly_stochastic_are_warned_about_by_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    network = write(tmp_path, "skewed.json", json.dumps(SKEWED))
    code, stdout, stderr = run_cli(capsys, "simulate", "consensus", "--network", network,
                                   "--iterations", "5", "--out", str(tmp_path / "out"))
    assert code == 0
    assert "warning: W is not column stochastic" in stderr and "'b' (2.2)" in stderr
    assert "nan" not in stdout and "not doubly stochastic" in stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["metrics"]["predicted_distance_bound"] is None
    assert any("not doubly stochastic" in note for note in summary["notes"])


@pytest.mark.parametrize("command", [["simulate", "consensus", "--iterations", "60"],
                                     ["topology"]])
def test_missing_weights_are_filled_in_and_said_so(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    network = write(tmp_path, "unweighted.json", json.dumps(UNWEIGHTED))
    code, stdout, stderr = run_cli(capsys, *command, "--network", network)
    assert code == 0, stderr
    assert "note: 3 nodes ('a', 'b', 'c') give a neighbour no weight" in stderr
    assert "Traceback" not in stderr and ("completed" in stdout or "b <- a: 0.3333" in stdout)


@pytest.mark.usefixtures("no_dense_algebra")
def test_a_large_consensus_run_takes_the_sparse_path(capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, stderr = run_cli(capsys, "simulate", "consensus", "--nodes", "600",
                                   "--iterations", "3", "--sync-timeout", "20")
    assert code == 0, stderr
    assert "completed" in stdout and "n/a" not in stdout


def test_spectral_figures_that_cannot_be_computed_are_said_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("peerflow.algorithms._mixing.DENSE_EIGEN_NODES", 2)
    monkeypatch.setattr("peerflow.algorithms._mixing.ARPACK_MAXITER", 1)
    code, stdout, _ = run_cli(capsys, "simulate", "consensus", "--nodes", "60", "--topology",
                              "ring", "--iterations", "3", "--out", str(tmp_path))
    assert code == 0 and "not computed" in stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["metrics"]["slem"] is None
    assert any("ARPACK did not converge" in note for note in summary["notes"])


def bad_inputs(folder: Path) -> list[tuple[list[str], str]]:
    nested = write(folder, "deep.json", "[" * DEPTH + "]" * DEPTH)
    deep_job = write(folder, "deep.toml", "a = " + "[" * DEPTH + "]" * DEPTH)
    nul = write(folder, "nul.json", json.dumps({"nodes": [{"id": "a\x00b"}]}))
    named = write(folder, "ctl.json", json.dumps({"nodes": [
        {"id": "controller", "neighbors": [{"id": "b", "weight": 0.5}]},
        {"id": "b", "neighbors": [{"id": "controller", "weight": 0.5}]}]}))
    forever = write(folder, "inf.toml", 'algorithm = "consensus"\nsync_timeout = inf\n')
    huge = write(folder, "huge.toml", 'algorithm = "consensus"\n[network]\nnodes = 100000000\n')
    listen = ["--listen", "127.0.0.1:0"]
    return [
        (["simulate", "consensus", "--network", nested], "nested too deeply"),
        (["controller", "--job", deep_job, *listen], "nested too deeply"),
        (["simulate", "consensus", "--network", nul], r"node id 'a\x00b' is not a valid name"),
        (["simulate", "consensus", "--network", named], "node id 'controller' is reserved"),
        (["simulate", "consensus", "--nodes", "100000000"], "100000000 nodes are too many"),
        (["controller", "--job", huge, *listen], "100000000 nodes are too many"),
        (["simulate", "consensus", "--sync-timeout", "inf"], "'--sync-timeout'"),
        (["controller", "--job", forever, *listen], "sync_timeout: expected a number <= 86400"),
    ]


@pytest.mark.parametrize("case", range(8))
def test_bad_input_is_one_line_and_exit_2(
    case: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args, message = bad_inputs(tmp_path)[case]
    code, _, stderr = run_cli(capsys, *args)
    assert code == 2
    assert stderr.count("\n") == 1 and message in stderr, stderr


def test_one_process_consensus_waits_longer_the_more_nodes_share_its_loop() -> None:
    many = Network.from_dict({"nodes": [{"id": f"n{i}"} for i in range(4_000)]})
    few = Network.from_dict({"nodes": [{"id": f"n{i}"} for i in range(40)]})
    assert {ex.sync_timeout for ex in consensus_executors(many, 0, 10.0).values()} == {20.0}
    assert {ex.sync_timeout for ex in consensus_executors(few, 0, 10.0).values()} == {10.0}
