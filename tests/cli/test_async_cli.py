"""``peerflow simulate gossip | async-push-sum | ad-psgd | async-gradient-push`` and their
job files: summaries, plots against ticks and wall time, reproducible scheduled runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import peerflow
from peerflow.cli import main
from peerflow.jobs import JobError, build_executors, load_job, report_job

PNG = b"\x89PNG\r\n\x1a\n"


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


@pytest.mark.timeout(120)
def test_gossip_averages_and_plots_the_error_against_ticks_and_wall_time(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gossip"
    assert main(["simulate", "gossip", "-n", "5", "-i", "300", "--out", str(out)]) == 0
    assert "distance to average" in capsys.readouterr().out
    metrics = summary(out)["metrics"]
    assert metrics["distance_to_average"] < 1e-9 and metrics["sum_error"] < 1e-12
    assert len(summary(out)["results"]["site-1"]["clock"]) == 300
    for plot in ("gossip_ticks.png", "gossip_time.png"):
        assert (out / plot).read_bytes()[:8] == PNG


@pytest.mark.timeout(120)
def test_a_scheduled_push_sum_run_is_the_same_run_every_time(tmp_path: Path) -> None:
    args = ["simulate", "async-push-sum", "-t", "random-directed", "-i", "60", "--set",
            "scheduled=1", "--set", "max_delay=3", "--set", "drop=0.2"]
    for run in ("one", "two"):
        assert main([*args, "--out", str(tmp_path / run)]) == 0
    one, two = (summary(tmp_path / run)["results"] for run in ("one", "two"))
    assert {n: r["value_history"] for n, r in one.items()} == \
        {n: r["value_history"] for n, r in two.items()}
    assert summary(tmp_path / "one")["metrics"]["distance_to_average"] < 1e-3


def test_a_drop_of_one_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "gossip", "-i", "5", "--set", "scheduled=1", "--set", "drop=1"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and "drop must be below 1" in err


def test_pairwise_gossip_on_a_directed_graph_is_refused_in_one_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "gossip", "-t", "random-directed", "-i", "5"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and "needs an undirected graph" in err


@pytest.mark.timeout(120)
def test_a_gossip_job_file_with_its_extra_runs_as_a_node_would(tmp_path: Path) -> None:
    path = tmp_path / "job.toml"
    path.write_text('algorithm = "gossip"\niterations = 100\n[network]\ntopology = "ring"\n'
                    'nodes = 4\n[extra]\nscheduled = 1\nmax_delay = 2\n')
    job = load_job(path)
    assert job.extra == {"scheduled": 1.0, "max_delay": 2.0}
    result = peerflow.simulate(job.config, build_executors(job))
    assert result.ok, result.reason
    report_job(result, job, tmp_path)
    assert summary(tmp_path)["metrics"]["distance_to_average"] < 1e-3
    path.write_text('algorithm = "gossip"\n[extra]\nspeed = 1\n')
    with pytest.raises(JobError, match="'speed'"):
        load_job(path)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("algorithm", ["ad-psgd", "async-gradient-push"])
def test_asynchronous_learning_plots_the_loss_against_wall_time(
        algorithm: str, tmp_path: Path) -> None:
    out = tmp_path / algorithm
    assert main(["simulate", algorithm, "-p", "least-squares", "-t", "ring", "-i", "40",
                 "--set", "max_wait=0.002", "--out", str(out)]) == 0
    metrics = summary(out)["metrics"]
    assert metrics["train_loss"] < metrics["train_loss_start"]
    for plot in (f"{algorithm}_train_loss_ticks.png", "train_loss_time.png"):
        assert (out / plot).read_bytes()[:8] == PNG
