"""``peerflow simulate choco-sgd --compress``: bytes per node in the summary and table, the
loss-against-bytes plot, and clear errors for bad specs and uncompressed algorithms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peerflow.cli import app, main
from peerflow.jobs import Job, JobError, load_job

runner = CliRunner()


def _summary(out: Path, *args: str) -> dict:
    result = runner.invoke(app, ["simulate", *args, "-p", "least-squares", "-n", "4", "-i", "30",
                                 "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "bytes sent per node" in result.output
    return json.loads((out / "summary.json").read_text())


@pytest.mark.timeout(300)
def test_choco_sgd_with_top_k_reports_fewer_bytes_per_node_than_dgd(tmp_path: Path) -> None:
    dgd = _summary(tmp_path / "dgd", "dgd")
    choco = _summary(tmp_path / "choco", "choco-sgd", "--compress", "qsgd:4",
                     "--set", "gamma=0.5")
    assert choco["config"]["extra"] == {"iterations": 30, "stepsize": 0.05, "gamma": 0.5,
                                        "compress": "qsgd:4"}
    for node, result in choco["results"].items():
        sent = result["bytes_sent"]
        assert 0 < sent < dgd["results"][node]["bytes_sent"]
        assert result["bytes_sequence"][0] == 0 and result["bytes_sequence"][-1] == sent
    per_node = [r["bytes_sent"] for r in choco["results"].values()]
    assert choco["metrics"]["bytes_sent_per_node"] == sum(per_node) / len(per_node)
    assert choco["metrics"]["bytes_sent_total"] == sum(per_node)
    assert (tmp_path / "choco" / "train_loss_bytes.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, message", [
    (["choco-sgd", "--compress", "top-k:2"], "--compress: compressor 'top-k:2': the fraction"),
    (["choco-sgd", "--compress", "zip"], "expected one of none, top-k:FRACTION"),
    (["gt", "--compress", "top-k:0.01"], "gt sends its values uncompressed"),
])
def test_a_bad_compress_option_is_one_clear_line(args: list[str], message: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", *args, "-i", "1"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_job_file_with_a_bad_compressor_is_refused(tmp_path: Path) -> None:
    job = tmp_path / "job.toml"
    job.write_text('algorithm = "choco-sgd"\nproblem = "least-squares"\n[network]\nnodes = 3\n'
                   '[extra]\ncompress = "qsgd:0"\n')
    with pytest.raises(JobError, match="qsgd:0"):
        load_job(job)


def test_a_job_file_names_its_compressor_and_nodes_rebuild_it(tmp_path: Path) -> None:
    job = tmp_path / "job.toml"
    job.write_text('algorithm = "choco-sgd"\nproblem = "least-squares"\n[network]\nnodes = 3\n'
                   '[extra]\ncompress = "random-k:0.5"\ngamma = 0.4\n')
    loaded = load_job(job)
    assert loaded.config.extra["compress"] == "random-k:0.5"
    assert Job.from_spec(loaded.spec()) == loaded


@pytest.mark.timeout(300)
def test_choco_gossip_averages_vectors_and_reports_bytes_per_node(tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", "choco-gossip", "-n", "5", "-i", "150",
                                 "--compress", "top-k:0.1", "--set", "gamma=0.15",
                                 "--set", "dimension=20", "--out", str(tmp_path)],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["config"]["extra"] == {"iterations": 150, "gamma": 0.15, "dimension": 20,
                                          "compress": "top-k:0.1"}
    assert summary["metrics"]["distance_to_average"] < 1e-4
    sent = [r["bytes_sent"] for r in summary["results"].values()]
    assert min(sent) > 0 and summary["metrics"]["bytes_sent_total"] == sum(sent)
    for plot in ("consensus_error.png", "consensus_error_bytes.png"):
        assert (tmp_path / plot).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.timeout(300)
def test_dgd_with_compress_sends_error_feedback_compressed_gossip(tmp_path: Path) -> None:
    dense = _summary(tmp_path / "dense", "dgd")
    sparse = _summary(tmp_path / "sparse", "dgd", "--compress", "top-k:0.2", "--set",
                      "gamma=0.3")
    assert sparse["config"]["extra"]["compress"] == "top-k:0.2"
    assert sparse["metrics"]["bytes_sent_total"] < dense["metrics"]["bytes_sent_total"]
    assert sparse["metrics"]["train_loss"] < sparse["metrics"]["train_loss_start"]


@pytest.mark.timeout(120)
def test_bytes_are_counted_in_memory_by_reference_too(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PEERFLOW_STRICT")  # values by reference, as in use
    result = runner.invoke(app, ["simulate", "choco-gossip", "-n", "3", "-i", "5",
                                 "--set", "dimension=10", "--out", str(tmp_path)],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert min(r["bytes_sent"] for r in summary["results"].values()) > 5 * 10 * 8
