"""``--processes`` on every algorithm: one node process each, the simulator's results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ENTRY = "import sys; from peerflow.cli import main; sys.exit(main())"
TRAINER = Path(__file__).parents[2] / "examples" / "trainer.py"


def simulate(*args: str) -> dict:
    """Run ``peerflow simulate ARGS`` (in one process); return its summary.json."""
    out = Path(args[args.index("--out") + 1])
    done = subprocess.run([sys.executable, "-c", ENTRY, "simulate", *args], timeout=170,
                          capture_output=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return dict(json.loads((out / "summary.json").read_text()))


def untimed(fields: dict) -> dict:
    """``fields`` but the bytes sent (each transport frames them its own way) and the loss
    records (they carry their clock time)."""
    return {k: v for k, v in fields.items() if not k.startswith("bytes_") and "sequence" not in k}


@pytest.mark.timeout(400)
@pytest.mark.parametrize("command", [
    ["push-sum", "-n", "3", "-i", "30"],
    ["dgd", "-n", "3", "-t", "ring", "-i", "12", "--agent-command", f"python {TRAINER}"],
    ["fedavg", "-n", "3", "-r", "2"],
], ids=["push-sum", "dgd with agents", "fedavg"])
def test_processes_give_the_in_process_results(tmp_path: Path, command: list[str]) -> None:
    alone = simulate(*command, "--out", str(tmp_path / "one"))
    spread = simulate(*command, "--processes", "--out", str(tmp_path / "many"))
    assert spread["status"] == "completed" == alone["status"]
    assert untimed(spread["metrics"]) == untimed(alone["metrics"])
    for node, result in alone["results"].items():
        assert untimed(spread["results"][node]) == untimed(result)
