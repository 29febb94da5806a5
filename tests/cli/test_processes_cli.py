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
    assert spread["metrics"] == alone["metrics"]
    for node, result in alone["results"].items():  # loss records carry their clock time
        assert {k: v for k, v in spread["results"][node].items() if "sequence" not in k} == \
            {k: v for k, v in result.items() if "sequence" not in k}
