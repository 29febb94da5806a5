"""The asynchronous benchmark's figures: loss curves over nodes, time to a target, and the
lossy run that only the asynchronous algorithms complete."""

from __future__ import annotations

import pytest

from peerflow.cli import _bench as bench_cli

bench_cli.load_benchmarks()
from benchmarks import asynchronous  # noqa: E402  (found by load_benchmarks)


def test_the_loss_at_a_moment_is_the_mean_of_each_nodes_newest_record() -> None:
    curve = asynchronous.mean_loss_over_time([[(0.0, 4.0), (2.0, 2.0)], [(1.0, 3.0)]])
    assert curve == [(0.0, 3.5), (1.0, 3.5), (2.0, 2.5)]  # before its first record: its first
    assert asynchronous.time_to(curve, 3) == 2.0 and asynchronous.time_to(curve, 1) is None


@pytest.mark.timeout(120)
def test_the_lossy_run_aborts_synchronously_and_completes_asynchronously() -> None:
    rows = asynchronous.lossy_average(300)
    assert [r["status"] for r in rows] == ["aborted", "completed", "completed"]
    assert all(r["lost"] > 0 for r in rows)
    assert all(r["distance_to_average"] < 1e-9 for r in rows[1:])
    text = asynchronous.markdown({"races": [], "lossy": rows})
    assert "| gossip | completed |" in text
