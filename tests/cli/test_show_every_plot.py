"""``peerflow show`` draws every plot a run drew, byte for byte, from summary.json alone:
epochs, the distance to a known optimum, push-sum's error, a time-varying network's
bound per period, and the asynchronous algorithms' plots against ticks and wall time."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch

from peerflow.cli import main

RUNS = {
    "least-squares": (["gt", "-p", "least-squares", "-n", "3", "-i", "12"],
                      ["distance_to_optimum.png", "test_loss.png", "train_loss.png",
                       "train_loss_bytes.png", "train_loss_time.png"]),
    "push-sum": (["push-sum", "-n", "4", "-i", "20"], ["push_sum.png", "push_sum_error.png"]),
    "time-varying": (["consensus", "-n", "8", "-t", "exponential-one-peer", "-i", "9"],
                     ["consensus.png", "consensus_error.png"]),
    "gossip": (["gossip", "-n", "4", "-i", "40"], ["gossip_ticks.png", "gossip_time.png"]),
    "ad-psgd": (["ad-psgd", "-p", "least-squares", "-t", "ring", "-n", "3", "-i", "12",
                 "--set", "max_wait=0.002"],
                ["ad-psgd_train_loss_ticks.png", "test_loss.png", "train_loss.png",
                 "train_loss_bytes.png", "train_loss_time.png"]),
}


def pngs(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.glob("*.png"))}


def legend(png: bytes) -> list[str]:
    """The legend a plot's PNG metadata records (its Description's JSON)."""
    at = 8
    while at < len(png):
        (length,), kind = struct.unpack(">I", png[at:at + 4]), png[at + 4:at + 8]
        body = png[at + 8:at + 8 + length]
        if kind in (b"tEXt", b"iTXt") and body.startswith(b"Description\0"):
            text = body.split(b"\0", 1)[1]
            return json.loads(text if kind == b"tEXt" else text[2:].split(b"\0", 2)[2])["legend"]
        at += 12 + length
    raise AssertionError("the PNG records no Description")


@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", sorted(RUNS))
def test_show_draws_every_plot_of_the_run_again(name: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    args, plots = RUNS[name]
    threads = torch.get_num_threads()
    try:
        assert main(["simulate", *args, "--out", str(tmp_path / "run")]) == 0
    finally:
        torch.set_num_threads(threads)
    table = capsys.readouterr().out
    drawn = pngs(tmp_path / "run")
    assert sorted(drawn) == plots
    assert main(["show", str(tmp_path / "run"), "--out", str(tmp_path / "again")]) == 0
    assert capsys.readouterr().out == table
    assert pngs(tmp_path / "again") == drawn
    if name == "time-varying":  # exponential-one-peer on 8 nodes: a period of 3
        assert "bound: sigma2(period product)^floor(t/3) ||x(0) - avg||" in legend(
            drawn["consensus_error.png"])
