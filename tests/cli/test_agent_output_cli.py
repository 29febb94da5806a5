"""Agents' output on the console: each line says whose it is, none is lost at the end."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ENTRY = "import sys; from peerflow.cli import main; sys.exit(main())"
TRAINER = Path(__file__).parents[2] / "examples" / "trainer.py"
LATE_LINES = 2000

CHATTY = textwrap.dedent(f"""
    import atexit, os, runpy, sys
    site = os.environ["PEERFLOW_NODE"]
    print("hello from", site, flush=True)
    print("warning on stderr", file=sys.stderr, flush=True)
    # written once the run is over, while the node stops: more than a pipe holds
    atexit.register(lambda: print("\\n".join(f"late {{i}} " + "x" * 60
                                              for i in range({LATE_LINES})), end=""))
    sys.argv = [{str(TRAINER)!r}]
    runpy.run_path({str(TRAINER)!r}, run_name="__main__")
""")


@pytest.mark.timeout(200)
def test_agent_lines_are_prefixed_by_site_on_stderr_and_all_arrive(tmp_path: Path) -> None:
    script = tmp_path / "chatty.py"
    script.write_text(CHATTY)
    done = subprocess.run([sys.executable, "-c", ENTRY, "simulate", "dgd", "-n", "2", "-t",
                           "ring", "-i", "4", "--agent-command", f"{sys.executable} {script}"],
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "hello" not in done.stdout and "late" not in done.stdout  # stdout: the summary
    lines = done.stderr.splitlines()
    for site in ("site-1", "site-2"):
        assert f"[{site}] warning on stderr" in lines
        assert [line for line in lines if line.endswith(f"hello from {site}")] == \
            [f"[{site}] hello from {site}"]
        late = [line for line in lines if line.startswith(f"[{site}] late ")]
        assert len(late) == LATE_LINES  # the last one has no newline: written all the same
    assert "BrokenPipe" not in done.stderr
