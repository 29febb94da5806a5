"""Bytes sent per node, for averaging runs too: counted in memory when asked, over TCP always."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peerflow.cli import main


def metrics(out: Path, *args: str) -> dict:
    assert main(["simulate", *args, "--out", str(out)]) == 0
    return dict(json.loads((out / "summary.json").read_text())["metrics"])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("algorithm", ["consensus", "push-sum"])
def test_averaging_runs_report_the_bytes_each_node_sent(
        tmp_path: Path, algorithm: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PEERFLOW_STRICT", raising=False)  # strict memory encodes (and counts)
    plain = metrics(tmp_path / "plain", algorithm, "-n", "5", "-i", "20")
    counted = metrics(tmp_path / "counted", algorithm, "-n", "5", "-i", "20", "--count-bytes")
    tcp = metrics(tmp_path / "tcp", algorithm, "-n", "5", "-i", "20", "--transport", "tcp")
    assert "bytes_sent_per_node" not in plain  # values passed by reference: nothing counted
    for run in (counted, tcp):
        assert run["bytes_sent_total"] == pytest.approx(5 * run["bytes_sent_per_node"])
        assert run["bytes_sent_per_node"] > 20 * 8  # at least a float per iteration
    summary = json.loads((tmp_path / "counted" / "summary.json").read_text())
    assert sum(r["bytes_sent"] for r in summary["results"].values()) == counted["bytes_sent_total"]
