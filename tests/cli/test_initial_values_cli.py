"""``peerflow simulate consensus --initial-values``: NVFlare's job replayed from the
command line, vectors, and bad files named in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peerflow.cli import main

NVFLARE = Path(__file__).parents[1] / "data" / "nvflare_consensus"


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.timeout(60)
def test_nvflares_network_file_and_initial_values_give_nvflares_values(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run_cli(capsys, "simulate", "consensus",
                              "--network", str(NVFLARE / "config_fed_server.json"),
                              "--initial-values", str(NVFLARE / "initial_values.json"),
                              "--iterations", "50", "--out", str(tmp_path / "run"))
    assert code == 0, stdout
    recorded = json.loads((NVFLARE / "value_history.json").read_text())["value_history"]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert {node: r["value_history"] for node, r in summary["results"].items()} == recorded
    assert summary["metrics"]["true_average"] == 23 / 6


@pytest.mark.timeout(60)
def test_vector_initial_values_are_averaged_entry_by_entry(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = tmp_path / "x0.json"
    values.write_text(json.dumps({"site-1": [0, 10], "site-2": [3, 4], "site-3": [6.0, 1]}))
    code, stdout, _ = run_cli(capsys, "simulate", "consensus", "--nodes", "3", "--topology",
                              "complete", "--iterations", "60", "--initial-values", str(values),
                              "--out", str(tmp_path / "run"))
    assert code == 0, stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    for history in (r["value_history"] for r in summary["results"].values()):
        assert history[-1] == pytest.approx([3.0, 5.0], abs=1e-9)
    assert summary["metrics"]["true_average"] is None
    assert summary["metrics"]["distance_to_average"] < 1e-9


@pytest.mark.parametrize(("content", "message"), [
    ('{"site-1": 1, "site-2": 2}', "no value for ['site-3']"),
    ('{"site-1": 1, "site-2": 2, "site-3": 3, "site-9": 4}',
     "values for unknown nodes ['site-9']"),
    ('{"site-1": 1, "site-2": "two", "site-3": 3}', "'site-2' must be a finite number"),
    ('{"site-1": 1, "site-2": true, "site-3": 3}', "'site-2' must be a finite number"),
    ('{"site-1": [1, 2], "site-2": [1], "site-3": [3, 4]}', "must all have one shape"),
    ("[1, 2, 3]", "must hold a JSON object node -> value"),
    ("{oops", "is not valid JSON"),
])
def test_a_bad_initial_values_file_is_one_clear_line(
        tmp_path: Path, content: str, message: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x0.json"
    path.write_text(content)
    code, _, stderr = run_cli(capsys, "simulate", "consensus", "--nodes", "3",
                              "--initial-values", str(path))
    assert code == 2
    assert message in stderr and str(path) in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_initial_values_with_processes_are_refused_in_one_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, stderr = run_cli(capsys, "simulate", "consensus", "--network",
                              str(NVFLARE / "config_fed_server.json"), "--initial-values",
                              str(NVFLARE / "initial_values.json"), "--processes")
    assert code == 2 and "does not combine with --processes" in stderr
