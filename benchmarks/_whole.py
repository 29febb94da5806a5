"""A whole command, measured from process start to exit: wall time and the peak RSS of
its whole process tree (every descendant, also those that leave its session).

The tree is sampled from /proc every ``SAMPLE_S`` seconds and summed. ``wait4``'s
``ru_maxrss`` is used only where there is no /proc: on Linux a child's maximum starts
from its parent's resident size when it is forked, so from a large benchmark process it
reports the parent, not the command.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SAMPLE_S = 0.05


def run_measured(command: list[str], cwd: Path, timeout: float,
                 env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``command`` in ``cwd`` (stdout and stderr to files there); its exit code,
    wall seconds, peak tree RSS in MB and the command line as it can be typed."""
    cwd.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(cwd / "stdout.txt", "wb") as out, open(cwd / "stderr.txt", "wb") as err:
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err, env=env,
                                   start_new_session=True)
        peak_kb, status, usage = 0, None, None
        while status is None:
            pid, code, rusage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                status, usage = code, rusage
                break
            if time.perf_counter() - started > timeout:
                _kill_tree(process.pid)
                process.returncode = os.waitstatus_to_exitcode(os.wait4(process.pid, 0)[1])
                return {"ok": False, "error": f"timed out after {timeout:g} s",
                        "command": shlex.join(command)}
            peak_kb = max(peak_kb, tree_rss_kb(process.pid))
            time.sleep(SAMPLE_S)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    assert usage is not None
    if not Path("/proc/self/stat").exists():
        peak_kb = usage.ru_maxrss * (1 if sys.platform != "darwin" else 1 / 1024)
    return {"ok": process.returncode == 0, "exit_code": process.returncode, "wall_s": wall,
            "peak_rss_mb": peak_kb / 1024, "command": shlex.join(command)}


def tree_rss_kb(root: int) -> int:
    """The summed resident set of ``root`` and all its descendants, in KB (0 off Linux)."""
    children, rss = _process_table()
    return sum(rss.get(pid, 0) for pid in _tree(root, children))


def _kill_tree(root: int) -> None:
    """SIGKILL ``root`` and its descendants (NVFlare puts its workers in sessions of
    their own, so killing a process group would miss them)."""
    for pid in _tree(root, _process_table()[0]):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


def _process_table() -> tuple[dict[int, list[int]], dict[int, int]]:
    """Each process's children and its RSS in KB, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after the command name: state, ppid...
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        rss[int(entry.name)] = int(fields[21]) * page_kb
    return children, rss


def _tree(root: int, children: dict[int, list[int]]) -> list[int]:
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree
