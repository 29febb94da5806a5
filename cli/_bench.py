"""``peerflow bench``: the benchmark suite of a source checkout.

``benchmarks/`` sits beside the packages in a clone and is not installed, so it
is imported only when the command runs: from the import path, else from the
checkout this CLI was installed from (editable install), else from the current
folder. Anywhere else the command says so in one line.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from . import _render as render
from ._errors import CliInputError

SECTIONS = ("latency", "scale", "consensus", "time-varying", "emulation", "nvflare", "transport",
            "convergence", "asynchronous", "compression", "engines", "ray")


def add_commands(app: typer.Typer) -> None:
    """Register ``bench`` on the ``peerflow`` app."""
    app.command("bench")(bench)


def bench(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for bench.json, REPORT.md "
                                      "and the plots.")],
    quick: Annotated[bool, typer.Option("--quick", help="Small sizes: under two minutes.")]
    = False,
    nvflare_python: Annotated[str | None, typer.Option(
        "--nvflare-python", help="A Python with NVFlare installed (its own venv): run its "
        "jobs live beside peerflow's; without it NVFlare's figures are recorded ones.")] = None,
    only: Annotated[list[str] | None, typer.Option(
        "--only", metavar="SECTION",
        help=f"Run only this section (repeatable): {', '.join(SECTIONS)}.")] = None,
    readme: Annotated[Path | None, typer.Option(
        "--readme", help="Rewrite this README's performance section from the report.")] = None,
) -> None:
    """Benchmark latency, scale, convergence, emulated networks and NVFlare, against floors."""
    unknown = sorted(set(only or ()) - set(SECTIONS))
    if unknown:
        raise CliInputError(f"--only {unknown[0]!r} is not a section; choose from "
                            f"{', '.join(SECTIONS)}")
    if nvflare_python is not None and shutil.which(nvflare_python) is None:
        raise CliInputError(f"--nvflare-python {nvflare_python!r} is not an executable Python; "
                            "give the python of a venv with nvflare installed (README: "
                            "NVFlare side by side)")
    out_dir = render.prepare_out(out)
    assert out_dir is not None
    load_benchmarks().bench(out_dir, quick=quick, nvflare_python=nvflare_python,
                            only=set(only) if only else None, readme=readme)


def load_benchmarks() -> Any:
    """The suite's entry module (``benchmarks.__main__``) from wherever the checkout is.

    Raises:
        CliInputError: no benchmarks/ folder is reachable.
    """
    module = _entry_module()
    if module is not None:
        return module
    for root in (Path(__file__).resolve().parents[1], Path.cwd()):
        if (root / "benchmarks" / "__init__.py").is_file():
            sys.path.insert(0, str(root))
            module = _entry_module()
            if module is not None:
                return module
    raise CliInputError("peerflow bench needs the benchmarks/ folder of a source checkout; "
                        "run it from a clone of the repository")


def _entry_module() -> Any | None:
    for name in ("peerflow.benchmarks.__main__", "benchmarks.__main__"):  # installed, or a clone
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "bench"):
            return module
    return None
