"""--out: checked before anything runs; a folder holding anything is replaced only with --force."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peerflow.cli import main

RUN = ["simulate", "consensus", "--nodes", "4", "--iterations", "5", "--sync-timeout", "2"]


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("processes", [[], ["--processes"]])
def test_an_out_whose_summary_cannot_be_written_is_refused_before_the_run(
    processes: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    (out / "summary.json").mkdir(parents=True)  # in the way of the summary, even for root
    code, stdout, stderr = run_cli(capsys, *RUN, *processes, "--out", str(out), "--force")
    assert code == 2 and stdout == ""
    assert stderr.startswith("peerflow: error: --force cannot remove ")
    assert len(stderr.splitlines()) == 1 and "summary.json" in stderr


def test_an_out_below_a_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "somefile").write_text("mine")
    code, stdout, stderr = run_cli(capsys, *RUN, "--out", str(tmp_path / "somefile" / "sub"))
    assert code == 2 and stdout == ""
    assert stderr == (f"peerflow: error: --out {str(tmp_path / 'somefile' / 'sub')!r} exists "
                      "and is not a folder\n")


def test_a_non_empty_out_is_refused_without_force_and_left_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text('{"status": "from an earlier run"}')
    code, stdout, stderr = run_cli(capsys, *RUN, "--out", str(out))
    assert code == 2 and stdout == ""
    assert len(stderr.splitlines()) == 1
    assert "is not empty (summary.json); pass --force" in stderr
    assert (out / "summary.json").read_text() == '{"status": "from an earlier run"}'


def test_force_replaces_the_results_and_keeps_the_users_other_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    (out / "stale_from_another_algorithm.png").write_bytes(b"old plot")
    (out / "metrics.csv").write_text("stale")
    (out / "notes.txt").write_text("mine")
    code, _, _ = run_cli(capsys, *RUN, "--out", str(out), "--force")
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["consensus.png", "consensus_error.png",
                                                     "metrics.jsonl", "notes.txt",
                                                     "summary.json"]
    assert json.loads((out / "summary.json").read_text())["status"] == "completed"
    assert (out / "notes.txt").read_text() == "mine"


def test_an_empty_or_new_out_needs_no_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "new" / "deep"):
        code, _, _ = run_cli(capsys, *RUN, "--out", str(out))
        assert code == 0 and (out / "summary.json").is_file()
