"""Per-iteration metrics: ``metrics.jsonl`` / ``metrics.csv`` in --out, ``--tensorboard DIR``."""

from __future__ import annotations

import csv
import json
import shlex
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from peerflow.cli import main

EXAMPLES = Path(__file__).parents[2] / "examples"
LOGGING_TRAINER = f"""\
import sys
sys.path.insert(0, {str(EXAMPLES)!r})
from trainer import Trainer
from peerflow.agents import Agent, AgentClosed, TaskResult

trainer, steps = Trainer(), 0
with Agent() as agent:
    while True:
        try:
            task = agent.get_task()
        except AgentClosed:
            break
        result = trainer.answer(task)
        if task.task_name == "local_step":
            norm = float(sum(float(g.square().sum()) for g in result.values())) ** 0.5
            agent.log_metric("grad_norm", norm, step=steps)
            agent.log_metric("phase", "local_step")
            steps += 1
        agent.submit_result(TaskResult(data=result))
"""



def read_events(run: Path) -> dict[str, dict[int, float]]:
    """A TensorBoard run folder's scalars: tag -> {step: value} (TFRecord frames of
    tensorboardX's Event protos: length, its CRC, the event, its CRC)."""
    from tensorboardX.proto.event_pb2 import Event

    (events,) = run.glob("events.out.tfevents.*")
    data, position, scalars = events.read_bytes(), 0, {}
    while position < len(data):
        (length,) = struct.unpack_from("<Q", data, position)
        event = Event.FromString(data[position + 12:position + 12 + length])
        position += 12 + length + 4
        for value in event.summary.value:
            scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    return scalars


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def by_series(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[int, Any]]:
    series: dict[tuple[str, str], dict[int, Any]] = {}
    for row in rows:
        series.setdefault((row["node"], row["name"]), {})[row["iteration"]] = row["value"]
    return series


def test_consensus_writes_every_node_and_iteration_to_the_metrics_file_and_tensorboard(
        tmp_path: Path) -> None:
    out, board = tmp_path / "out", tmp_path / "board"
    assert main(["simulate", "consensus", "-n", "5", "-t", "ring", "-i", "30", "--seed", "3",
                 "--out", str(out), "--tensorboard", str(board)]) == 0
    rows = records(out / "metrics.jsonl")
    assert all(set(row) == {"node", "iteration", "seconds", "name", "value"} for row in rows)
    series = by_series(rows)
    summary = json.loads((out / "summary.json").read_text())
    nodes = [f"site-{i}" for i in range(1, 6)]
    average = sum(summary["results"][n]["value_history"][0] for n in nodes) / 5
    for node in nodes:
        history = summary["results"][node]["value_history"]
        assert series[node, "value"] == dict(enumerate(history))
        assert series[node, "distance_to_average"] == pytest.approx(
            {t: abs(x - average) for t, x in enumerate(history)})
        scalars = read_events(board / node)
        assert set(scalars) == {"value", "distance_to_average"}
        assert sorted(scalars["value"]) == list(range(31))
        assert scalars["value"][30] == pytest.approx(history[30], rel=1e-6)  # float32 in TB
    error = series["_network", "consensus_error"]
    assert sorted(error) == list(range(31)) and error[30] < error[0]
    assert set(read_events(board / "_network")) == {"consensus_error", "distance_to_average"}


def test_learning_losses_land_at_their_iterations_in_csv_and_tensorboard(
        tmp_path: Path) -> None:
    out, board = tmp_path / "out", tmp_path / "board"
    assert main(["simulate", "gt", "-p", "two-moons", "-n", "3", "-i", "25", "--out", str(out),
                 "--metrics-format", "csv", "--tensorboard", str(board)]) == 0
    assert not (out / "metrics.jsonl").exists()
    with (out / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    summary = json.loads((out / "summary.json").read_text())
    train = [row for row in rows if row["node"] == "site-2" and row["name"] == "train_loss"]
    expected = summary["results"]["site-2"]["train_loss_sequence"]
    assert [(float(r["seconds"]), float(r["value"])) for r in train] == \
        list(zip(expected["seconds"], expected["loss"], strict=True))
    steps = [int(r["iteration"]) for r in train]  # the start, each epoch's end (10 batches), 25
    assert steps == [0, 10, 20, 25]
    scalars = read_events(board / "site-2")
    assert {"train_loss", "test_loss", "test_accuracy"} <= set(scalars)
    assert sorted(scalars["test_loss"]) == [0, 10, 20, 25] and list(scalars["test_accuracy"]) \
        == [25]
    assert sorted(read_events(board / "_network")["train_loss"]) == [0, 10, 20, 25]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("processes", [False, True], ids=["in-process", "processes"])
def test_an_agents_logged_metrics_go_to_its_site_in_both(tmp_path: Path,
                                                         processes: bool) -> None:
    trainer = tmp_path / "logging_trainer.py"
    trainer.write_text(LOGGING_TRAINER)
    out, board = tmp_path / "out", tmp_path / "board"
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(trainer))}"
    assert main(["simulate", "dgd", "-n", "2", "-t", "path", "-i", "6", "--agent-command",
                 command, "--out", str(out), "--tensorboard", str(board),
                 *(["--processes"] if processes else [])]) == 0
    series = by_series(records(out / "metrics.jsonl"))
    for node in ("site-1", "site-2"):
        assert sorted(series[node, "train_loss"]) == [0, 6]  # the controller's own too
        assert sorted(series[node, "grad_norm"]) == list(range(6))
        assert list(series[node, "phase"].values()) == ["local_step"] * 6  # steps by order
        scalars = read_events(board / node)
        assert sorted(scalars["grad_norm"]) == list(range(6)) and "phase" not in scalars
        assert scalars["grad_norm"][5] == pytest.approx(series[node, "grad_norm"][5], rel=1e-6)


def test_large_networks_write_the_network_series_unless_asked_for_every_node(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("peerflow.jobs._metrics_out.NODE_METRICS_LIMIT", 3)
    args = ["simulate", "consensus", "-n", "4", "-i", "5"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert {row["node"] for row in records(tmp_path / "a" / "metrics.jsonl")} == {"_network"}
    assert "--node-metrics writes every node's too" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "b"), "--node-metrics"]) == 0
    assert len({row["node"] for row in records(tmp_path / "b" / "metrics.jsonl")}) == 5
    assert main([*args, "--out", str(tmp_path / "c"), "--metrics-format", "none"]) == 0
    assert not list((tmp_path / "c").glob("metrics.*"))


def test_without_tensorboardx_the_option_says_how_to_install_it_before_running(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails
    assert main(["simulate", "consensus", "-n", "3", "--out", str(tmp_path / "out"),
                 "--tensorboard", str(tmp_path / "board")]) == 2
    error = capsys.readouterr().err.strip()
    assert error == ("peerflow: error: --tensorboard needs the tensorboardX package: "
                     "pip install 'peerflow[tensorboard]'")
    assert not (tmp_path / "out" / "summary.json").exists()


def test_a_bad_metrics_format_is_refused_before_running(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "consensus", "-n", "3", "--out", str(tmp_path),
                 "--metrics-format", "parquet"]) == 2
    assert "--metrics-format must be one of jsonl, csv, none, got 'parquet'" in \
        capsys.readouterr().err
    assert not (tmp_path / "summary.json").exists()


def test_fedavg_writes_the_global_models_metrics_and_each_sites_contribution_per_round(
        tmp_path: Path) -> None:
    out, board = tmp_path / "out", tmp_path / "board"
    assert main(["simulate", "fedavg", "-n", "2", "-r", "3", "--out", str(out),
                 "--tensorboard", str(board)]) == 0
    rows = records(out / "metrics.jsonl")
    series = by_series(rows)
    summary = json.loads((out / "summary.json").read_text())
    for name in ("train_loss", "test_loss", "test_accuracy"):
        assert series["_network", name] == {r["round"]: r["metrics"][name]
                                            for r in summary["rounds"]}
    seconds = [row["seconds"] for row in rows if row["name"] == "test_loss"]
    assert seconds == sorted(seconds) and seconds[0] > 0
    for site in ("site-1", "site-2"):
        assert sorted(series[site, "aggregation_weight"]) == [0, 1, 2]
        assert {"aggregation_weight", "NUM_STEPS_CURRENT_ROUND"} <= set(read_events(board / site))
    assert sorted(read_events(board / "_network")["test_accuracy"]) == [0, 1, 2]
