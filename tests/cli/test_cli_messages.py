"""An error is said once: the command's own line, not a log line repeating it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

ENTRY = "import sys; from peerflow.cli import main; sys.exit(main())"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", [
    ["node", "--name", "site-1", "--join-timeout", "0.5", "--controller"],
    ["status", "--timeout", "0.5"],
])
def test_a_controller_that_is_not_there_is_said_in_one_line(command: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", ENTRY, *command, f"127.0.0.1:{closed_port()}"],
                          env={**os.environ, "PEERFLOW_SECRET": "a-secret"}, timeout=50,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("peerflow: "), lines
    assert "Connection refused" in lines[0] or "cannot connect" in lines[0]
