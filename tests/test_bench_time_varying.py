"""The time-varying benchmark section: figures from real runs, checked against the
matrix form (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peerflow.cli import _bench as bench_cli
from peerflow.cli import main

bench_cli.load_benchmarks()
from benchmarks import time_varying  # noqa: E402  (found by load_benchmarks)


def test_one_peer_exponential_reaches_the_tolerance_first_with_fewest_messages() -> None:
    rows = [time_varying.topology_run(name, 16, 400) for name in time_varying.TOPOLOGY_NAMES]
    time_varying._ratios(rows)
    by_name = {row["topology"]: row for row in rows}
    one_peer = by_name["exponential-one-peer"]
    assert one_peer["iterations_to_tolerance"] == 4  # exact averaging: log2(16) iterations
    assert one_peer["messages_to_tolerance"] == 4 * 16 and one_peer["period"] == 4
    assert by_name["exponential"]["messages_per_iteration"] == 16 * 4
    assert by_name["ring"]["iteration_ratio"] > 10 and by_name["ring"]["message_ratio"] > 20
    assert all(row["matrix_form_deviation"] < 1e-12 for row in rows)


@pytest.mark.timeout(300)
def test_bench_writes_the_time_varying_table_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    assert main(["bench", "--quick", "--only", "time-varying", "--out", str(out)]) == 0
    section = json.loads((out / "bench.json").read_text())["sections"]["time-varying"]
    assert "error" not in section, section.get("error")
    assert "| exponential-one-peer | 32 | 5 | 32 | 5 | 1 |" in (out / "REPORT.md").read_text()
    for plot in section["plots"]:
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
