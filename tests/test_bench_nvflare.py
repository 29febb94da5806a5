"""The NVFlare side by side: whole commands measured, pinned inputs, and a loud notice
when NVFlare's figures are recorded ones (NVFlare itself is not installed here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from peerflow.cli import _bench as bench_cli

bench_cli.load_benchmarks()
from benchmarks import _whole, nvflare  # noqa: E402  (found by load_benchmarks)

HOLD = "import time; x = bytearray({mb} << 20); time.sleep({s})"
SPAWN = "import subprocess, sys; subprocess.run([sys.executable, '-c', {code!r}])"


@pytest.mark.timeout(60)
def test_a_whole_command_counts_the_memory_of_its_whole_process_tree(tmp_path: Path) -> None:
    child = SPAWN.format(code=HOLD.format(mb=200, s=1))
    result = _whole.run_measured([sys.executable, "-c", child], tmp_path, timeout=50)
    assert result["ok"] and result["peak_rss_mb"] > 200
    assert result["wall_s"] >= 1.0 and result["command"].startswith(sys.executable)


@pytest.mark.timeout(60)
def test_a_command_over_its_time_is_killed_with_its_children(tmp_path: Path) -> None:
    child = SPAWN.format(code=HOLD.format(mb=1, s=60))
    result = _whole.run_measured([sys.executable, "-c", child], tmp_path, timeout=1.5)
    assert result == {"ok": False, "error": "timed out after 1.5 s",
                      "command": result["command"]}


def test_both_sides_read_the_same_pinned_network_and_initial_values(tmp_path: Path) -> None:
    options = nvflare.prepare("consensus", tmp_path)
    network = json.loads((tmp_path / "network.json").read_text())
    values = json.loads((tmp_path / "initial_values.json").read_text())
    assert len(network["nodes"]) == 12 and sorted(values) == sorted(
        n["id"] for n in network["nodes"])
    assert options == ["consensus", "--initial-values", str(tmp_path / "initial_values.json")]
    launch = (tmp_path / "launch.py").read_text()
    assert "network.json" in launch and "initial_values.json" in launch
    assert "n_clients" not in launch  # NVFlare 2.9.0 refuses it once clients are set by to()
    assert (tmp_path / "byoc.py").is_file() and 'job.to("byoc.py", "server")' in launch
    assert nvflare.prepare("two-moons", tmp_path / "gt")[:3] == ["gt", "--problem",
                                                                  "nvflare-two-moons"]
    assert "GTExecutor" in (tmp_path / "gt" / "two_moons_gt.py").read_text()


def entry(live: dict[str, Any] | None) -> dict[str, Any]:
    ours = {"ok": True, "wall_s": 0.5, "peak_rss_mb": 100.0, "in_loop_s": 0.05,
            "command": "peerflow simulate consensus --network n.json"}
    return {"nodes": 12, "iterations": 50, "live": live, "peerflow": {"memory": ours},
            "recorded": nvflare.RECORDED["consensus"], "folder": "f"}


def test_recorded_figures_are_announced_loudly_and_marked_in_the_report(
        capsys: pytest.CaptureFixture[str]) -> None:
    failed = entry({"ok": False, "error": "ModuleNotFoundError: nvflare",
                    "command": "python launch.py 50"})
    nvflare.announce("consensus", failed)
    stderr = capsys.readouterr().err
    assert "!!!" in stderr and "RECORDED" in stderr and "ModuleNotFoundError" in stderr
    assert "python launch.py 50" in stderr and "peerflow simulate consensus" in stderr
    text = nvflare.markdown({"jobs": {"consensus": failed}})
    assert "RECORDED" in text and "Whole command against whole command" in text


def test_live_figures_give_whole_command_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    live = entry({"ok": True, "wall_s": 40.0, "peak_rss_mb": 4000.0,
                  "command": "python launch.py 50"})
    nvflare.announce("consensus", live)
    assert "!!!" not in capsys.readouterr().err
    assert nvflare.ratios(live, live["peerflow"]["memory"]) == ("80x", "40x")
    assert "measured in this run" in nvflare.markdown({"jobs": {"consensus": live}})


def test_a_missing_nvflare_python_is_one_clear_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from peerflow.cli import main

    assert main(["bench", "--only", "nvflare", "--out", str(tmp_path),
                 "--nvflare-python", str(tmp_path / "nope" / "python")]) == 2
    error = capsys.readouterr().err.strip()
    assert "is not an executable Python" in error and len(error.splitlines()) == 1


def test_a_small_command_started_from_a_large_process_is_measured_small(tmp_path: Path) -> None:
    ballast = bytearray(400 * 1024 * 1024)  # a big parent: its size must not count
    ballast[::4096] = b"x" * len(ballast[::4096])
    measured = _whole.run_measured([sys.executable, "-c", "import time; time.sleep(0.3)"], tmp_path,
                            timeout=60)
    assert measured["ok"] and measured["peak_rss_mb"] < 100, measured
    del ballast


@pytest.mark.timeout(300)
def test_peerflow_runs_from_a_relative_out_folder(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    results = nvflare.side_by_side(Path("runs"), None, only=("consensus",))
    ours = results["jobs"]["consensus"]["peerflow"]
    assert ours["memory"]["ok"] and ours["tcp"]["ok"], ours
