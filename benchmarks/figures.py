"""The README's figures, made by real ``peerflow simulate`` runs.

``python -m benchmarks.figures --out docs/images`` runs each command below (printing
it), in a temporary folder, and copies the plot the README shows into DIR under its
README name:

- ``consensus-16-nodes.png``: consensus on a random graph of 16 nodes, each node's
  distance to the true average on a log scale with the spectral-gap bound (dashed);
- ``gt-two-moons-loss.png``: gradient tracking on two moons (6 nodes, 1000
  iterations), each node's training loss per epoch.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

FIGURES: dict[str, tuple[tuple[str, ...], str]] = {
    "consensus-16-nodes.png": (("simulate", "consensus", "--nodes", "16", "--topology", "random",
                                "--iterations", "300", "--seed", "0"), "consensus_error.png"),
    "gt-two-moons-loss.png": (("simulate", "gt", "--problem", "two-moons", "--nodes", "6",
                               "--iterations", "1000", "--seed", "0"), "train_loss.png"),
}
"""README file name -> (the ``peerflow`` command's arguments, the plot of its --out to keep)."""


def peerflow_command() -> str:
    """The ``peerflow`` executable installed beside this Python (else on PATH).

    Raises:
        SystemExit: none is installed.
    """
    found = (shutil.which("peerflow", path=str(Path(sys.executable).parent))
             or shutil.which("peerflow"))
    if found is None:
        raise SystemExit("python -m benchmarks.figures: no `peerflow` command: install "
                         "peerflow (pip install -e .) into this Python's environment")
    return found


def make(out: Path, names: Sequence[str] = tuple(FIGURES)) -> list[Path]:
    """Run the command of each figure in ``names`` and copy its plot into ``out``.

    Raises:
        subprocess.CalledProcessError: a command failed (its output is on the screen).
    """
    out.mkdir(parents=True, exist_ok=True)
    peerflow, written = peerflow_command(), []
    with tempfile.TemporaryDirectory() as scratch:
        for name in names:
            arguments, plot = FIGURES[name]
            run = Path(scratch) / Path(name).stem
            print("$ peerflow " + shlex.join([*arguments, "--out", str(run)]), flush=True)
            subprocess.run([peerflow, *arguments, "--out", str(run)], check=True)
            shutil.copyfile(run / plot, out / name)
            written.append(out / name)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """Make every figure (or those named by --only) into --out."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.figures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNGs")
    parser.add_argument("--only", action="append", choices=list(FIGURES),
                        help="make this figure only")
    args = parser.parse_args(argv)
    for path in make(args.out, args.only or tuple(FIGURES)):
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
