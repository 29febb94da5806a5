"""``--agent-tls``: agent processes over mutual TLS with the sites' startup kits."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from peerflow.cli import main

ENTRY = "import sys; from peerflow.cli import main; sys.exit(main())"
TRAINER = Path(__file__).parents[2] / "examples" / "trainer.py"
PROJECT = """\
participants:
  - name: server
    type: server
    org: nvidia
    fed_learn_port: 8002
    admin_port: 8003
  - name: site-1
    type: client
    org: nvidia
    listening_host: localhost
  - name: site-2
    type: client
    org: nvidia
    listening_host: localhost
"""


def simulate(out: Path, *extra: str) -> subprocess.CompletedProcess[bytes]:
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(TRAINER))}"
    return subprocess.run([sys.executable, "-c", ENTRY, "simulate", "dgd", "-n", "2", "-t",
                           "path", "-i", "12", "--seed", "1", "--agent-command", command,
                           "--out", str(out), *extra],
                          capture_output=True, timeout=150, stdin=subprocess.DEVNULL)


@pytest.mark.timeout(200)
def test_simulate_with_secure_agents_gives_the_plain_runs_losses(tmp_path: Path) -> None:
    (tmp_path / "project.yml").write_text(PROJECT)
    assert main(["provision", str(tmp_path / "project.yml"), "--out", str(tmp_path / "kits")]) == 0
    secure = simulate(tmp_path / "secure", "--agent-tls", str(tmp_path / "kits"))
    assert secure.returncode == 0, secure.stderr.decode()[-3000:]
    plain = simulate(tmp_path / "plain")
    assert plain.returncode == 0, plain.stderr.decode()[-3000:]
    results = [json.loads((tmp_path / run / "summary.json").read_text())["results"]
               for run in ("secure", "plain")]
    losses = [result["site-1"]["train_loss_sequence"]["loss"]
              for result in results]  # the seconds differ
    assert losses[0] == losses[1] and len(losses[0]) > 2


def test_a_node_without_its_startup_kit_is_refused_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["node", "--name", "site-1", "--controller", "127.0.0.1:1", "--agent-command",
                 "true", "--agent-tls", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == (f"peerflow: error: --agent-tls: secure agent link of site 'site-1': "
                           f"no startup kit of site 'site-1': "
                           f"'{tmp_path / 'startup' / 'rootCA.pem'}' does not exist (copy the "
                           f"'startup' folder of site 'site-1' from the provision output into "
                           f"'{tmp_path}')")
