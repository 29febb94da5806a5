"""The plots a run writes, read back from each PNG's metadata: the range of a long run,
epochs with their iterations, the distance to a known optimum, push-sum's error, and
none for a run with nothing to draw."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peerflow.cli import app

runner = CliRunner()



def simulate(*args: str) -> None:
    result = runner.invoke(app, ["simulate", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def png_text(path: Path) -> dict[str, str]:
    """The text chunks of a PNG (tEXt, and uncompressed iTXt), by keyword."""
    data, at, text = path.read_bytes(), 8, {}
    while at < len(data):
        (length,), kind = struct.unpack(">I", data[at:at + 4]), data[at + 4:at + 8]
        body = data[at + 8:at + 8 + length]
        if kind == b"tEXt":
            key, value = body.split(b"\0", 1)
            text[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"iTXt":
            key, rest = body.split(b"\0", 1)
            text[key.decode("latin-1")] = rest[2:].split(b"\0", 2)[2].decode()
        at += 12 + length
    return text


def seen(path: Path) -> tuple[str, dict]:
    """A plot's title and what its axes show (labels, scales, limits, legend)."""
    text = png_text(path)
    return text["Title"], json.loads(text["Description"])


def test_a_run_of_20000_iterations_is_plotted_up_to_where_it_converged(
        tmp_path: Path) -> None:
    simulate("consensus", "-n", "6", "-i", "20000", "--out", str(tmp_path))
    title, axes = seen(tmp_path / "consensus_error.png")
    assert "of 20,000" in title and axes["yscale"] == "log"
    assert axes["xlim"][1] < 200 and len(axes["legend"]) == 7  # six nodes and the bound
    title, axes = seen(tmp_path / "consensus.png")
    assert "of 20,000" in title and axes["xlim"][1] < 200


def test_learning_loss_is_plotted_against_epochs_that_say_their_iterations(
        tmp_path: Path) -> None:
    simulate("gt", "-n", "3", "-i", "25", "--out", str(tmp_path))
    title, axes = seen(tmp_path / "train_loss.png")
    assert axes["xlabel"] == "epoch (10 iterations each)" and axes["xlim"][1] >= 2.5
    assert len(axes["legend"]) == 3 and "gt on two-moons" in title


def pngs(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.glob("*.png"))


def test_least_squares_plots_each_nodes_distance_to_the_optimum(tmp_path: Path) -> None:
    simulate("gt", "-p", "least-squares", "-n", "3", "-i", "30", "--out", str(tmp_path))
    assert pngs(tmp_path) == ["distance_to_optimum.png", "test_loss.png", "train_loss.png",
                              "train_loss_bytes.png", "train_loss_time.png"]
    title, axes = seen(tmp_path / "distance_to_optimum.png")
    assert axes["yscale"] == "log" and axes["ylabel"] == "||x_i - x*||"
    assert len(axes["legend"]) == 3 and "distance to the optimum" in title


def test_a_problem_without_a_known_optimum_has_no_distance_plot(tmp_path: Path) -> None:
    simulate("dgd", "-p", "blobs", "-n", "3", "-i", "16", "--out", str(tmp_path))
    assert pngs(tmp_path) == ["test_loss.png", "train_loss.png", "train_loss_bytes.png",
                              "train_loss_time.png"]


def test_push_sum_plots_its_estimates_and_their_error(tmp_path: Path) -> None:
    simulate("push-sum", "-n", "5", "-i", "40", "--out", str(tmp_path))
    assert pngs(tmp_path) == ["push_sum.png", "push_sum_error.png"]
    _, axes = seen(tmp_path / "push_sum_error.png")
    assert axes["yscale"] == "log" and len(axes["legend"]) == 5


@pytest.mark.parametrize("algorithm", ["push-sum", "consensus"])
def test_a_run_of_no_iterations_writes_no_plot(tmp_path: Path, algorithm: str) -> None:
    simulate(algorithm, "-n", "4", "-i", "0", "--out", str(tmp_path))
    assert pngs(tmp_path) == [] and (tmp_path / "summary.json").exists()


def test_a_learning_run_plots_each_nodes_loss_against_wall_time_and_bytes(
        tmp_path: Path) -> None:
    simulate("dgd", "-p", "least-squares", "-n", "3", "-i", "30", "--out", str(tmp_path))
    summary = json.loads((tmp_path / "summary.json").read_text())
    last = max(result["train_loss_sequence"]["seconds"][-1]
               for result in summary["results"].values())
    title, axes = seen(tmp_path / "train_loss_time.png")
    assert "against wall time" in title and axes["xlabel"] == "seconds since the node started"
    assert axes["yscale"] == "log" and len(axes["legend"]) == 3
    assert axes["xlim"][0] <= 0 < last <= axes["xlim"][1]
    title, axes = seen(tmp_path / "train_loss_bytes.png")
    assert axes["xlabel"] == "bytes sent by the node" and len(axes["legend"]) == 3
    assert axes["xlim"][1] >= summary["metrics"]["bytes_sent_per_node"] > 0
