"""The plots a run writes: the distance to a known optimum, push-sum's error, and none
for a run with nothing to draw."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from peerflow.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def restore_torch_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def simulate(*args: str) -> None:
    result = runner.invoke(app, ["simulate", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def pngs(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.glob("*.png"))


def test_least_squares_plots_each_nodes_distance_to_the_optimum(tmp_path: Path) -> None:
    simulate("gt", "-p", "least-squares", "-n", "3", "-i", "30", "--out", str(tmp_path))
    assert pngs(tmp_path) == ["distance_to_optimum.png", "test_loss.png", "train_loss.png"]


def test_a_problem_without_a_known_optimum_has_no_distance_plot(tmp_path: Path) -> None:
    simulate("dgd", "-p", "blobs", "-n", "3", "-i", "16", "--out", str(tmp_path))
    assert pngs(tmp_path) == ["test_loss.png", "train_loss.png"]


def test_push_sum_plots_its_estimates_and_their_error(tmp_path: Path) -> None:
    simulate("push-sum", "-n", "5", "-i", "40", "--out", str(tmp_path))
    assert pngs(tmp_path) == ["push_sum.png", "push_sum_error.png"]


@pytest.mark.parametrize("algorithm", ["push-sum", "consensus"])
def test_a_run_of_no_iterations_writes_no_plot(tmp_path: Path, algorithm: str) -> None:
    simulate(algorithm, "-n", "4", "-i", "0", "--out", str(tmp_path))
    assert pngs(tmp_path) == [] and (tmp_path / "summary.json").exists()
