"""A tiny run of the benchmark suite's code paths (sizes minimal; no timing is asserted)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from peerflow.cli import _bench as bench_cli
from peerflow.cli import main

benchmarks_main = bench_cli.load_benchmarks()
from benchmarks import _suite, scale  # noqa: E402  (found by load_benchmarks)

TINY = _suite.Plan(repeats=1, seconds=0.001, loops=("asyncio",), counts=(4,), tcp_counts=(3,),
                   topology_nodes=4, payloads=("scalar", "1 KB"), network_payloads=("1 KB",),
                   scale_counts=(8, 16), flat_iterations=200, consensus_iterations=20,
                   emulation_iterations=3, two_moons_iterations=5)


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scale's child processes run in this process instead."""
    def child(args: list[str], timeout: float) -> dict[str, Any]:
        what, *numbers = args
        values = [int(x) for x in numbers]
        return scale._flat(*values) if what == "flat" else scale._job(*values, side=what)

    monkeypatch.setattr(scale, "child", child)
    monkeypatch.setenv("PEERFLOW_STRICT", "1")  # restored after the suite pops it


@pytest.mark.timeout(120)
def test_the_suite_writes_json_report_and_plots(tmp_path: Path, in_process: None) -> None:
    only = {"latency", "scale", "consensus", "emulation", "nvflare"}
    report = _suite.run_suite(tmp_path, quick=True, plan=TINY, only=only,
                              nvflare_python=sys.executable)
    assert {name for name, s in report["sections"].items() if "error" not in s} == only, \
        {name: s.get("error") for name, s in report["sections"].items()}
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["sections"]["latency"]["tables"]["node count (tcp, tls)"]
    live = saved["sections"]["nvflare"]["jobs"]["consensus"]["live"]
    assert live["ok"] is False and "nvflare" in live["error"]  # no NVFlare here: recorded figures
    text = (tmp_path / "REPORT.md").read_text()
    assert "## Summary" in text and "bare asyncio" in text and "RECORDED" in text
    for plot in ("latency_node_count", "latency_payload", "latency_ratios", "memory_flat",
                 "consensus_error"):
        assert (tmp_path / f"{plot}.png").stat().st_size > 0


def test_peerflow_bench_writes_the_report_and_the_readme_section(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEERFLOW_STRICT", "1")
    readme = tmp_path / "README.md"
    readme.write_text("# peerflow\n\nIntro.\n")
    for _ in range(2):  # the second run replaces the section instead of adding one
        assert main(["bench", "--quick", "--only", "consensus", "--out", str(tmp_path / "out"),
                     "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# peerflow\n\nIntro.") and text.count("## Performance") == 1
    assert (tmp_path / "out" / "REPORT.md").is_file()


def test_peerflow_bench_outside_a_checkout_says_so_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench_cli, "_entry_module", lambda: None)
    assert main(["bench", "--quick", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert "source checkout" in error and len(error.splitlines()) == 1
