from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peerflow.cli import app, main

runner = CliRunner()



def simulate(*args: str) -> str:
    result = runner.invoke(app, ["simulate", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_gt_writes_the_loss_curves_of_every_node_and_their_plots(tmp_path: Path) -> None:
    output = simulate("gt", "--problem", "least-squares", "--nodes", "4", "--iterations", "200",
                      "--out", str(tmp_path))
    assert "distance to optimum" in output and "wall time" in output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["algorithm"] == "gt" and summary["status"] == "completed"
    assert summary["config"]["extra"] == {"iterations": 200, "stepsize": 0.05}
    assert set(summary["results"]) == {"site-1", "site-2", "site-3", "site-4"}
    curve = summary["results"]["site-1"]["train_loss_sequence"]
    assert set(curve) == {"iteration", "seconds", "loss"}
    assert curve["iteration"] == list(range(201))
    assert len(curve["seconds"]) == len(curve["loss"]) == 201
    assert summary["metrics"]["distance_to_optimum"] < 1e-3
    for plot in ("train_loss.png", "test_loss.png"):
        assert (tmp_path / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_two_moons_reports_accuracy_and_passes_extra_parameters(tmp_path: Path) -> None:
    output = simulate("gtadam", "-n", "3", "-t", "ring", "-i", "20", "--set", "beta1=0.8",
                      "--out", str(tmp_path))
    assert "test accuracy" in output and "two-moons" in output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["config"]["extra"]["beta1"] == 0.8
    assert 0 <= summary["metrics"]["test_accuracy"] <= 1


def test_push_diging_runs_on_a_directed_graph_and_writes_nothing_without_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    output = simulate("push-diging", "-p", "least-squares", "-t", "random-directed", "-i", "30")
    assert "completed" in output
    assert list(tmp_path.iterdir()) == []


def test_push_sum_finds_the_average_that_plain_consensus_misses(tmp_path: Path) -> None:
    simulate("push-sum", "--nodes", "8", "--iterations", "200", "--out", str(tmp_path))
    metrics = json.loads((tmp_path / "summary.json").read_text())["metrics"]
    assert metrics["distance_to_average"] < 1e-9 and metrics["matrix_form_error"] < 1e-12
    assert metrics["plain_consensus_distance_to_average"] > 1e-3
    assert (tmp_path / "push_sum.png").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["gt", "--problem", "mnist"], "unknown problem 'mnist'"),
    (["dgd", "--set", "beta1"], "--set 'beta1': expected KEY=NUMBER"),
    (["extra", "--topology", "torus"], "unknown topology 'torus'"),
])
def test_bad_input_gets_one_line_and_exit_code_2(args: list[str], message: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
