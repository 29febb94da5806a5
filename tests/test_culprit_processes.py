"""Across processes, a node process that is stopped (SIGSTOP) is named as the root.

A stopped process keeps its connections open and answers nothing: its
neighbours time out waiting for it, theirs for them, and the controller must
trace the waits back to it. Every child process is killed in a ``finally``.
"""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from test_multiprocess import kill_all, start_job, wait_running

from peerflow.algorithms import metropolis_hastings, random_connected

SYNC_TIMEOUT = 2.0
MARGIN = 5.0
pytestmark = pytest.mark.timeout(120)


def sparse_job(tmp_path: Path, seed: int) -> tuple[str, list[str]]:
    """A consensus job on a sparse 8-node graph (from a network file); its node names."""
    network = metropolis_hastings(random_connected(8, seed=seed, mean_degree=2.0))
    (tmp_path / "network.json").write_text(json.dumps(network.to_dict()))
    job = (f'algorithm = "consensus"\niterations = 100000000\nseed = {seed}\n'
           f'sync_timeout = {SYNC_TIMEOUT}\n[network]\nfile = "network.json"\n')
    return job, network.node_ids


def stop_one_node(tmp_path: Path, seed: int) -> tuple[str, dict[str, Any], str, float]:
    """Run the job, SIGSTOP one node (chosen by ``seed``) and wait for the controller.

    Returns:
        The stopped node, the summary, the controller's log, and the seconds from
        the stop to the controller's verdict.
    """
    job, nodes = sparse_job(tmp_path, seed)
    stopped = random.Random(seed).choice(nodes)
    children: list[Any] = []
    try:
        address = start_job(tmp_path, job, {node: [] for node in nodes}, children)
        wait_running(address, children)
        children[1 + nodes.index(stopped)].send_signal(signal.SIGSTOP)
        started = time.monotonic()
        log = tmp_path / "controller.log"
        while "panic at node" not in log.read_text() and children[0].poll() is None:
            time.sleep(0.05)  # the verdict, before the plots are drawn
        elapsed = time.monotonic() - started
        children[0].wait(timeout=30)
    finally:
        kill_all(children)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    return stopped, summary, (tmp_path / "controller.log").read_text(), elapsed


def test_a_stopped_node_process_is_named_as_the_root_with_the_chain(tmp_path: Path) -> None:
    stopped, summary, log, elapsed = stop_one_node(tmp_path, seed=3)
    assert summary["status"] == "aborted"
    assert summary["node"] == stopped and summary["roots"] == [stopped], summary["reason"]
    assert summary["reason"].startswith("stalled: ")
    assert f"waits on {stopped} (it. " in summary["reason"]
    assert summary["reason"].endswith(f"<- {stopped} silent since it. {summary['iteration']}, "
                                      "not answering")
    assert f"peerflow: run aborted at node {stopped!r} iteration {summary['iteration']}: " \
        f"{summary['reason']}" in log
    assert elapsed < SYNC_TIMEOUT + MARGIN
