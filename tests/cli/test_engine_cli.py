"""``peerflow simulate ... --engine batched``: the actor engine's report, engine "batched";
a run that cannot go batched says why in one line and runs on actors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peerflow.cli import app, main

runner = CliRunner()



def summary(out: Path, *args: str) -> tuple[dict, str]:
    result = runner.invoke(app, ["simulate", *args, "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads((out / "summary.json").read_text()), result.stderr


@pytest.mark.timeout(120)
@pytest.mark.parametrize("args", [["gt", "-p", "least-squares", "-n", "4", "-i", "40"],
                                  ["push-diging", "-p", "least-squares", "-n", "4", "-i", "40",
                                   "-t", "random-directed"],
                                  ["consensus", "-n", "5", "-i", "30"],
                                  ["push-sum", "-n", "5", "-i", "30"]])
def test_the_batched_engine_writes_the_actor_engines_summary_and_plots(
        tmp_path: Path, args: list[str]) -> None:
    actors, _ = summary(tmp_path / "actors", *args)
    batched, err = summary(tmp_path / "batched", *args, "--engine", "batched")

    assert err == "" and (actors["engine"], batched["engine"]) == ("actors", "batched")
    assert batched["status"] == "completed" and batched["config"] == actors["config"]
    assert set(batched["results"]) == set(actors["results"])
    sent = {"bytes_sent_per_node", "bytes_sent_total"}  # measured by a transport: none here
    assert set(batched["metrics"]) == set(actors["metrics"]) - sent
    for name, value in batched["metrics"].items():
        expected = actors["metrics"][name]
        assert value == (expected if isinstance(expected, str) else
                         pytest.approx(expected, rel=1e-9, abs=1e-12)), name
    assert sorted(p.name for p in (tmp_path / "batched").glob("*.png")) == \
        sorted(p.name for p in (tmp_path / "actors").glob("*.png") if "bytes" not in p.name)


@pytest.mark.timeout(120)
def test_a_run_that_cannot_go_batched_says_why_and_runs_on_actors(tmp_path: Path) -> None:
    result, err = summary(tmp_path, "gt", "-p", "blobs", "-n", "4", "-i", "5", "--engine",
                          "batched")

    assert result["engine"] == "actors" and result["status"] == "completed"
    assert err.splitlines() == ["peerflow: cannot run batched (the nodes' training batches "
                                "differ in size): running the actor engine"]


def test_an_unknown_engine_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "consensus", "-i", "2", "--engine", "gpu"]) == 2

    assert capsys.readouterr().err.splitlines() == [
        "peerflow: error: engine must be one of ['actors', 'batched'], got 'gpu'"]
