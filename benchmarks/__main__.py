"""``python -m benchmarks``: the whole suite (see ``peerflow bench``, which runs the same)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import _report, _suite

SECTIONS = ("latency", "scale", "consensus", "time-varying", "emulation", "nvflare", "transport",
            "convergence",
            "asynchronous", "compression", "engines", "ray")


def bench(out: Path, *, quick: bool, nvflare_python: str | None = None,
          only: set[str] | None = None, readme: Path | None = None) -> dict:
    """Run the suite into ``out``, print the summary, and update ``readme`` if given."""
    report = _suite.run_suite(out, quick=quick, nvflare_python=nvflare_python, only=only)
    print(_report.summary_markdown(report))
    print(f"\nwrote {out / 'bench.json'}, {out / 'REPORT.md'} and plots")
    for line in report["sections"].get("latency", {}).get("aim", []):
        print(line)
    if readme is not None:
        _report.update_readme(readme, _report.readme_section(report, str(out / "bench.json")))
        print(f"updated the performance section of {readme}")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    parser.add_argument("--quick", action="store_true", help="small sizes: under two minutes")
    parser.add_argument("--nvflare-python", help="a Python with NVFlare, to run its jobs live")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run this section")
    parser.add_argument("--readme", type=Path, help="README whose performance section to update")
    args = parser.parse_args(argv)
    bench(args.out, quick=args.quick, nvflare_python=args.nvflare_python,
          only=set(args.only) if args.only else None, readme=args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
