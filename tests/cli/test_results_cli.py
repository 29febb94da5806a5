"""summary.json for programs (setup fields, labelled losses, what an aborted run reached),
``peerflow show`` (the run's table and plots again) and ``peerflow compare``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from peerflow.algorithms import ConsensusExecutor
from peerflow.cli import main

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Run:
    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(arg) for arg in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def summary_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "summary.json").read_text())


def consensus(run_cli: Run, out: Path, *args: str) -> str:
    code, stdout, stderr = run_cli("simulate", "consensus", "--nodes", "4", "--iterations",
                                   "12", "--out", out, *args)
    assert code == 0, stderr
    return stdout


def crash_at(executor: type, node: str, iteration: int,
             monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``node`` fail (an exception in its run) when it reaches ``iteration``."""
    exchange = executor.exchange

    def crashing(self: Any, value: Any, t: int) -> Awaitable[dict[str, Any]]:
        if self.id == node and t == iteration:
            raise RuntimeError(f"crashed at {t}")
        return exchange(self, value, t)

    monkeypatch.setattr(executor, "exchange", crashing)


@pytest.mark.timeout(60)
def test_summary_names_its_format_seed_topology_transport_and_engine(
        run_cli: Run, tmp_path: Path) -> None:
    consensus(run_cli, tmp_path / "ring", "--topology", "ring", "--seed", "3",
              "--transport", "tcp")
    summary = summary_of(tmp_path / "ring")
    assert (summary["format"], summary["format_version"]) == ("peerflow-summary", 2)
    assert summary["seed"] == 3 and summary["transport"] == "tcp"
    assert summary["engine"] == "actors"
    assert summary["topology"] == {"name": "ring", "nodes": 4, "seed": 3}
    network = tmp_path / "net.json"
    network.write_text(json.dumps(summary["config"]["network"]))
    consensus(run_cli, tmp_path / "file", "--network", network)
    assert summary_of(tmp_path / "file")["topology"] == {"name": "file", "nodes": 4,
                                                          "file": str(network)}


@pytest.mark.timeout(180)
def test_a_multi_process_runs_summary_names_its_topology_and_transport(
        run_cli: Run, tmp_path: Path) -> None:
    code, _, stderr = run_cli("simulate", "push-sum", "--nodes", "3", "--topology",
                              "directed-ring", "--seed", "5", "--iterations", "4",
                              "--processes", "--out", tmp_path)
    assert code == 0, stderr
    summary = summary_of(tmp_path)
    assert summary["status"] == "completed" and summary["seed"] == 5
    assert summary["topology"] == {"name": "directed-ring", "nodes": 3, "seed": 5}
    assert (summary["transport"], summary["engine"]) == ("tcp", "actors")


@pytest.mark.timeout(120)
def test_loss_sequences_are_labelled_columns_with_their_units(
        run_cli: Run, tmp_path: Path) -> None:
    code, _, stderr = run_cli("simulate", "gt", "--problem", "least-squares", "--nodes", "3",
                              "--iterations", "6", "--out", tmp_path)
    assert code == 0, stderr
    summary = summary_of(tmp_path)
    for result in summary["results"].values():
        for kind in ("train", "test"):
            losses = result[f"{kind}_loss_sequence"]
            assert losses["iteration"] == [0, 1, 2, 3, 4, 5, 6]  # full batch: every one
            assert losses["seconds"][0] == 0.0 and losses["seconds"] == sorted(
                losses["seconds"])
            assert len(losses["loss"]) == 7 and losses["loss"][-1] < losses["loss"][0]
    units = summary["run"]["units"]["*_loss_sequence"]
    assert set(units) == {"iteration", "seconds", "loss"}


@pytest.mark.timeout(60)
def test_an_aborted_run_keeps_what_each_node_reached_and_plots_it(
        run_cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    crash_at(ConsensusExecutor, "site-2", 5, monkeypatch)
    code, stdout, stderr = run_cli("simulate", "consensus", "--nodes", "4", "--topology",
                                   "ring", "--iterations", "40", "--out", tmp_path)
    assert code == 1 and "run aborted at node 'site-2' iteration 4" in stderr  # its last sent
    assert "aborted" in stdout
    summary = summary_of(tmp_path)
    assert (summary["status"], summary["node"], summary["iteration"]) == ("aborted", "site-2", 4)
    assert "crashed at 5" in summary["reason"]
    reached = summary["iterations_reached"]
    assert sorted(reached) == ["site-1", "site-2", "site-3", "site-4"]
    histories = {node: r["value_history"] for node, r in summary["results"].items()}
    assert reached["site-2"] == 4 and len(histories["site-2"]) == 6  # x(0), 5 iterations
    for node, history in histories.items():  # each node: waiting for t, or done with t
        assert len(history) - 1 in (reached[node], reached[node] + 1) and reached[node] <= 5
    assert (tmp_path / "consensus.png").read_bytes()[:4] == b"\x89PNG"
    assert run_cli("show", tmp_path, "--out", tmp_path / "again")[:2] == (0, stdout)
    assert (tmp_path / "again" / "consensus.png").read_bytes() == (
        tmp_path / "consensus.png").read_bytes()


@pytest.mark.timeout(120)
def test_an_aborted_learning_run_keeps_its_losses_up_to_the_abort(
        run_cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from peerflow.algorithms import GTExecutor

    crash_at(GTExecutor, "site-3", 4, monkeypatch)
    code, _, stderr = run_cli("simulate", "gt", "--problem", "least-squares", "--nodes", "3",
                              "--iterations", "50", "--out", tmp_path)
    assert code == 1 and "site-3" in stderr
    summary = summary_of(tmp_path)
    assert summary["status"] == "aborted" and summary["metrics"] == {"problem": "least-squares"}
    losses = summary["results"]["site-3"]["train_loss_sequence"]
    assert losses["iteration"] == [0, 1, 2, 3, 4]
    assert summary["results"]["site-3"]["params"] is not None
    for plot in ("train_loss.png", "test_loss.png"):
        assert (tmp_path / plot).is_file()


@pytest.mark.timeout(60)
def test_show_renders_the_runs_table_and_plots_again(run_cli: Run, tmp_path: Path) -> None:
    run = tmp_path / "run"
    table = consensus(run_cli, run, "--topology", "ring")
    code, shown, stderr = run_cli("show", run, "--out", tmp_path / "again")
    assert code == 0, stderr
    assert shown == table and "distance to average" in shown
    plots = sorted(path.name for path in run.glob("*.png"))
    assert plots == ["consensus.png", "consensus_error.png"]
    assert sorted(path.name for path in (tmp_path / "again").iterdir()) == plots
    for plot in plots:
        assert (tmp_path / "again" / plot).read_bytes() == (run / plot).read_bytes()
    original = {plot: (run / plot).read_bytes() for plot in plots}
    for plot in plots:
        (run / plot).unlink()
    assert run_cli("show", run)[:2] == (0, table)  # into the run's own folder
    assert {plot: (run / plot).read_bytes() for plot in plots} == original


@pytest.mark.timeout(120)
def test_show_draws_a_learning_runs_loss_plots_again(run_cli: Run, tmp_path: Path) -> None:
    run = tmp_path / "run"
    code, table, _ = run_cli("simulate", "dgd", "--problem", "least-squares", "--nodes", "3",
                             "--iterations", "8", "--out", run)
    assert code == 0
    code, shown, _ = run_cli("show", run, "--out", tmp_path / "again")
    assert code == 0 and shown == table
    for plot in ("train_loss.png", "test_loss.png"):
        assert (tmp_path / "again" / plot).read_bytes() == (run / plot).read_bytes()


@pytest.fixture
def legends(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[str]]]:
    """The legend entries of every figure saved, by file name."""
    from matplotlib.figure import Figure

    seen: dict[str, list[str]] = {}
    savefig = Figure.savefig

    def recording(self: Figure, path: Any, *args: Any, **kwargs: Any) -> None:
        seen[Path(path).name] = [text.get_text() for axes in self.axes
                                 if axes.get_legend() is not None
                                 for text in axes.get_legend().get_texts()]
        savefig(self, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording)
    yield seen


@pytest.mark.timeout(60)
def test_compare_puts_two_runs_side_by_side_and_on_one_plot(
        run_cli: Run, tmp_path: Path, legends: dict[str, list[str]]) -> None:
    consensus(run_cli, tmp_path / "ring", "--topology", "ring")
    consensus(run_cli, tmp_path / "complete", "--topology", "complete")
    code, stdout, stderr = run_cli("compare", tmp_path / "ring", tmp_path / "complete",
                                   "--out", tmp_path / "cmp")
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert "ring" in lines[2] and "complete" in lines[2]  # the header: one column per run
    rows = {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:-1]]
            for line in lines if line.count("│") == 4}
    assert rows["algorithm"] == ["consensus", "consensus"]
    assert rows["topology"] == ["ring", "complete"] and rows["nodes"] == ["4", "4"]
    assert rows["iterations"] == ["12", "12"]
    ring, complete = (summary_of(tmp_path / name)["metrics"] for name in ("ring", "complete"))
    assert rows["distance to average"] == [f"{ring['distance_to_average']:.4g}",
                                           f"{complete['distance_to_average']:.4g}"]
    assert set(rows) >= {"status", "seed", "transport", "engine", "wall time"}
    assert sorted(path.name for path in (tmp_path / "cmp").iterdir()) == ["compare_distance.png"]
    assert legends["compare_distance.png"] == ["ring", "complete"]


@pytest.mark.timeout(120)
def test_compare_plots_learning_runs_mean_losses_by_iteration(
        run_cli: Run, tmp_path: Path, legends: dict[str, list[str]]) -> None:
    for algorithm in ("dgd", "gt"):
        assert run_cli("simulate", algorithm, "--problem", "least-squares", "--nodes", "3",
                       "--iterations", "8", "--out", tmp_path / algorithm)[0] == 0
    code, stdout, _ = run_cli("compare", tmp_path / "dgd", tmp_path / "gt",
                              "--out", tmp_path / "cmp")
    assert code == 0 and "train loss" in stdout and "distance to optimum" in stdout
    assert legends["compare_train_loss.png"] == legends["compare_test_loss.png"] == ["dgd", "gt"]


def copy_run(source: Path, target: Path, **changes: Any) -> Path:
    shutil.copytree(source, target)
    summary = summary_of(target)
    summary.update(changes)
    (target / "summary.json").write_text(json.dumps(summary))
    return target


@pytest.mark.timeout(60)
def test_show_and_compare_refuse_bad_runs_in_one_line(run_cli: Run, tmp_path: Path) -> None:
    run = tmp_path / "run"
    consensus(run_cli, run)
    (tmp_path / "empty").mkdir()
    old = copy_run(run, tmp_path / "old")
    old_summary = summary_of(old)
    del old_summary["format"], old_summary["format_version"]
    (old / "summary.json").write_text(json.dumps(old_summary))
    other = copy_run(run, tmp_path / "other", format_version=99)
    learning = copy_run(run, tmp_path / "learning", algorithm="gt",
                        metrics={"problem": "two-moons"})
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "summary.json").write_text("{not json")
    cases = [
        (["show", tmp_path / "missing"], "does not exist"),
        (["show", tmp_path / "empty"], "holds no summary.json"),
        (["show", tmp_path / "broken"], "is not a readable JSON file"),
        (["show", old], "has no format field (an older peerflow wrote it)"),
        (["show", other], "is format 'peerflow-summary' version 99; this peerflow reads"),
        (["compare", run, tmp_path / "missing"], "does not exist"),
        (["compare", run], "compare needs at least two runs, got 1"),
        (["compare", run, learning], "runs of different kinds cannot be compared: 'run' is "
                                     "averaging, 'learning' is learning on two-moons"),
    ]
    for args, message in cases:
        code, stdout, stderr = run_cli(*args)
        assert code == 2 and stdout == "", (args, stdout)
        assert stderr.startswith("peerflow: error: ") and len(stderr.splitlines()) == 1, stderr
        assert message in stderr, (message, stderr)
