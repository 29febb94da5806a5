"""The asynchronous commands write per-iteration metrics as the others do: gossip's
values per tick, AD-PSGD's losses at the iterations their records name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from peerflow.cli import main


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.timeout(120)
def test_gossip_writes_each_nodes_value_per_tick(tmp_path: Path) -> None:
    assert main(["simulate", "gossip", "-n", "4", "-i", "30", "--out", str(tmp_path)]) == 0
    values = [r for r in metrics(tmp_path) if r["node"] == "site-1" and r["name"] == "value"]
    history = json.loads((tmp_path / "summary.json").read_text())["results"]["site-1"][
        "value_history"]
    assert [r["value"] for r in values] == history


@pytest.mark.timeout(180)
def test_ad_psgd_writes_its_losses_at_their_recorded_iterations(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    try:
        assert main(["simulate", "ad-psgd", "-p", "least-squares", "-t", "ring", "-n", "3",
                     "-i", "12", "--set", "max_wait=0.002", "--out", str(tmp_path)]) == 0
    finally:
        torch.set_num_threads(threads)
    losses = json.loads((tmp_path / "summary.json").read_text())["results"]["site-2"][
        "train_loss_sequence"]
    train = [r for r in metrics(tmp_path) if r["node"] == "site-2" and r["name"] == "train_loss"]
    assert [(r["iteration"], r["seconds"], r["value"]) for r in train] == list(
        zip(losses["iteration"], losses["seconds"], losses["loss"], strict=True))
