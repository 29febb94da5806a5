from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from peerflow.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_simulate_consensus_writes_summary_and_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    code, stdout, _ = run_cli(capsys, "simulate", "consensus", "--nodes", "6", "--iterations",
                              "50", "--seed", "42", "--out", str(out))
    assert code == 0
    assert "final spread" in stdout and "spectral gap" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert sorted(summary["results"]) == [f"site-{i}" for i in range(1, 7)]
    assert len(summary["results"]["site-1"]["value_history"]) == 51
    assert summary["metrics"]["matrix_form_error"] < 1e-9
    assert summary["metrics"]["final_spread"] < 1e-6
    for plot in ("consensus.png", "consensus_error.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_network_file_in_nvflare_shape_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    network = {"nodes": [{"id": "a", "neighbors": [{"id": "b", "weight": 0.5}]},
                         {"id": "b", "neighbors": [{"id": "a", "weight": 0.5}]}]}
    path = tmp_path / "net.json"
    path.write_text(json.dumps(network))
    code, stdout, _ = run_cli(capsys, "simulate", "consensus", "--network", str(path),
                              "--iterations", "3")
    assert code == 0 and "completed" in stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--nodes", "0"], "Invalid value for '--nodes'"),
    (["--iterations", "-3"], "Invalid value for '--iterations'"),
    (["--nodes", "many"], "Invalid value for '--nodes'"),
    (["--topology", "blob"], "unknown topology 'blob'"),
    (["--network", "/does/not/exist.json"], "does not exist"),
    (["--transport", "carrier-pigeon"], "unknown transport 'carrier-pigeon'"),
    (["--sync-timeout", "0"], "Invalid value for '--sync-timeout'"),
])
def test_bad_input_prints_one_line_and_exits_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout, stderr = run_cli(capsys, "simulate", "consensus", *args)
    assert code == 2
    assert message in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert "Traceback" not in stderr + stdout


@pytest.mark.parametrize("content", ["{not json", '{"nodes": [{"id": "a", "neighbors": 3}]}',
                                     '{"nodes": [{"id": "a", "neighbors": '
                                     '[{"id": "zz", "weight": 0.1}]}]}', "[]"])
def test_a_malformed_network_file_is_one_clear_line(
    tmp_path: Path, content: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "net.json"
    path.write_text(content)
    code, _, stderr = run_cli(capsys, "simulate", "consensus", "--network", str(path))
    assert code == 2
    assert stderr.startswith(f"peerflow: error: network file '{path}'")
    assert len(stderr.strip().splitlines()) == 1


def test_out_that_is_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, stderr = run_cli(capsys, "simulate", "consensus", "--out", str(blocker))
    assert code == 2 and "exists and is not a folder" in stderr


def test_topology_prints_the_spectral_gap_and_writes_its_out_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout, _ = run_cli(capsys, "topology", "--nodes", "16", "--topology", "grid",
                              "--out", str(tmp_path / "grid"))
    assert code == 0
    assert "spectral gap" in stdout and "site-1 <- site-2: 0.25, site-5: 0.25" in stdout
    assert re.search(r"edges\W+24\b", stdout)  # a 4x4 grid has 24 links (48 arcs)
    saved = json.loads((tmp_path / "grid" / "network.json").read_text())
    assert [n["id"] for n in saved["nodes"]] == [f"site-{i}" for i in range(1, 17)]
    figures = json.loads((tmp_path / "grid" / "topology.json").read_text())
    assert (figures["edges"], figures["directed"]) == (24, False)
    code, _, err = run_cli(capsys, "topology", "--out", str(tmp_path / "grid"))
    assert code == 2 and "--force" in err
    assert run_cli(capsys, "topology", "--out", str(tmp_path / "grid"), "--force")[0] == 0
