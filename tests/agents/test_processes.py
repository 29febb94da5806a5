"""Process supervision (peerflow.agents): stopped in steps, always reaped, exit codes told."""

from __future__ import annotations

import os
import signal
import sys

import anyio

from peerflow.agents import exit_reason, start, stop, stop_all, wait_exit

IGNORES_SIGTERM = ("import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                   "print('ready', flush=True); time.sleep(60)")


async def test_a_process_that_ignores_sigterm_is_killed_after_its_grace_and_reaped() -> None:
    with anyio.fail_after(10):
        process = await anyio.open_process([sys.executable, "-c", IGNORES_SIGTERM])
        assert process.stdout is not None
        await process.stdout.receive()  # its SIGTERM handler is in place
        assert await stop(process, 0.1, kill_after=0.5) == -signal.SIGKILL
    assert exit_reason(-signal.SIGKILL) == "its process was killed by SIGKILL"


async def test_stopping_all_processes_leaves_none_running_and_keeps_exit_codes() -> None:
    with anyio.fail_after(10):
        quick = await start([sys.executable, "-c", "raise SystemExit(3)"], os.environ)
        slow = await start([sys.executable, "-c", "import time; time.sleep(60)"], os.environ)
        assert await wait_exit(quick, 5.0) == 3
        assert await wait_exit(slow, 0.1) is None
        await stop_all([quick, slow], 0.0, kill_after=2.0)
    assert (quick.returncode, slow.returncode) == (3, -signal.SIGTERM)
    assert exit_reason(3) == "its process exited with code 3"
