"""The benchmark suite: runs every section, writes OUT/bench.json, OUT/REPORT.md and plots.

Sections: latency (node count, topology, payload, memory/TCP/TLS, each against a
bare-asyncio floor run in the same process), scale and memory, consensus
against the spectral-gap bound, consensus on time-varying topologies, network
emulation, NVFlare side by side, the Ray engine (shards, their boundaries, its
largest job within a minute), and the other suites when their modules are
there (benchmarks/transport.py for TCP/TLS round trips and throughput,
benchmarks/convergence.py for the learning algorithms, benchmarks/compression.py
for loss against bytes with CHOCO-SGD). A section that fails is reported as
failed; the others still run.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from peerflow.jobs import write_json

from . import (
    _plots,
    _report,
    consensus,
    emulation,
    latency,
    nvflare,
    ray_engine,
    scale,
    time_varying,
)


@dataclass(frozen=True)
class Plan:
    """How much each section measures."""

    repeats: int
    seconds: float  # steady-state seconds per latency run
    loops: tuple[str, ...]
    counts: tuple[int, ...]
    tcp_counts: tuple[int, ...]
    topology_nodes: int
    payloads: tuple[str, ...]
    network_payloads: tuple[str, ...]
    scale_counts: tuple[int, ...]
    flat_iterations: int
    consensus_iterations: int
    emulation_iterations: int
    two_moons_iterations: int = 1000


QUICK = Plan(repeats=3, seconds=0.2, loops=(latency.default_loop(),), counts=(10, 100, 1000),
             tcp_counts=(10,), topology_nodes=32, payloads=("scalar", "16 MB"),
             network_payloads=("1 MB",), scale_counts=(1000, 3000), flat_iterations=20_000,
             consensus_iterations=300, emulation_iterations=20, two_moons_iterations=200)
FULL = Plan(repeats=3, seconds=1.0, loops=tuple(latency.loops()),
            counts=(10, 100, 1000, 10_000), tcp_counts=(10, 100), topology_nodes=100,
            payloads=tuple(latency.PAYLOADS), network_payloads=tuple(latency.PAYLOADS),
            scale_counts=(1000, 3000, 10_000, 30_000, 100_000), flat_iterations=100_000,
            consensus_iterations=1000, emulation_iterations=50)


def latency_section(plan: Plan, out: Path) -> dict[str, Any]:
    """Every latency table; rows also land in one flat list for the plots."""
    tables = {
        "node count (memory)": latency.node_count_rows(plan.counts, plan.loops, plan.repeats,
                                                       plan.seconds),
        "node count (tcp, tls)": [
            row for transport in ("tcp", "tls") for row in latency.node_count_rows(
                plan.tcp_counts, (latency.default_loop(),), plan.repeats, plan.seconds,
                transport)],
        "topology": latency.topology_rows(("ring", "random", "complete"),
                                          plan.topology_nodes, plan.repeats, plan.seconds),
        "payload (memory)": latency.payload_rows(plan.payloads, ("memory",), plan.repeats,
                                                 plan.seconds),
        "payload (memory, by reference: copy_on_send=False)": latency.payload_rows(
            plan.payloads, ("memory",), plan.repeats, plan.seconds, copy_on_send=False),
        "payload (tcp, tls)": latency.payload_rows(plan.network_payloads, ("tcp", "tls"),
                                                   plan.repeats, plan.seconds),
    }
    _plots.latency_plots(tables, out)
    return {"tables": {k: [r.to_dict() for r in v] for k, v in tables.items()},
            "markdown": {k: latency.format_rows(v) for k, v in tables.items()},
            "aim": latency.aim_verdicts(tables["node count (memory)"])}


def scale_section(plan: Plan, out: Path) -> dict[str, Any]:
    """Largest job within a minute, memory per node, memory over many iterations."""
    results = {"largest": scale.largest(list(plan.scale_counts)),
               "flat": scale.flat(plan.flat_iterations)}
    _plots.flat_plot(results["flat"], out)
    return results


def consensus_section(plan: Plan, out: Path) -> dict[str, Any]:
    results = consensus.suite(["ring", "grid", "random", "complete"], 32,
                              plan.consensus_iterations, out)
    return {**results, "markdown": consensus.markdown(results)}


def emulation_section(plan: Plan, out: Path) -> dict[str, Any]:
    rows = emulation.sweep(16, plan.emulation_iterations)
    return {"rows": rows, "markdown": emulation.markdown(rows, 16)}


def nvflare_section(plan: Plan, out: Path, nvflare_python: str | None) -> dict[str, Any]:
    results = nvflare.side_by_side(out, nvflare_python, plan.two_moons_iterations)
    return {**results, "markdown": nvflare.markdown(results)}


def transport_section(module: Any) -> dict[str, Any]:
    """benchmarks/transport.py's figures (round trips, throughput) with its own floors."""
    from peerflow.transport import Project, provision

    with tempfile.TemporaryDirectory() as kits:
        provision(Project("bench", "b", ("a",), ()), kits)
        figures = module.measure(kits)
    return {"figures": figures, "markdown": module.markdown(figures)}


def time_varying_section(out: Path, quick: bool) -> dict[str, Any]:
    """Consensus on the one-peer exponential graph against static and random topologies."""
    results = time_varying.suite(out, quick)
    return {**results, "markdown": time_varying.markdown(results)}


def convergence_section(module: Any, out: Path, quick: bool) -> dict[str, Any]:
    """benchmarks/convergence.py, run into OUT/convergence/ through its own entry point."""
    folder = out / "convergence"
    module.main(["--out", str(folder), *(["--quick"] if quick else [])])
    return {"folder": "convergence", "markdown": (folder / "REPORT.md").read_text()}


def measured_section(module: Any, quick: bool) -> dict[str, Any]:
    """A section module's ``measure(quick)`` and its ``markdown`` (benchmarks/asynchronous.py:
    sync against async with a slow node; benchmarks/engines.py: the batched engine against
    actors and the vmap floor)."""
    figures = module.measure(quick)
    return {**figures, "markdown": module.markdown(figures)}


def optional(name: str) -> Any | None:
    """Another engineer's benchmark module, or None if it is not in this checkout."""
    try:
        return importlib.import_module(f"{__package__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.{name}":
            raise
        return None


def sections(plan: Plan, out: Path, quick: bool,
             nvflare_python: str | None) -> dict[str, Callable[[], dict[str, Any]]]:
    """Each section as a thunk, in the order they run."""
    chosen: dict[str, Callable[[], dict[str, Any]]] = {
        "latency": lambda: latency_section(plan, out),
        "scale": lambda: scale_section(plan, out),
        "consensus": lambda: consensus_section(plan, out),
        "time-varying": lambda: time_varying_section(out, quick),
        "emulation": lambda: emulation_section(plan, out),
        "nvflare": lambda: nvflare_section(plan, out, nvflare_python),
        "ray": lambda: ray_engine.section(quick),
    }
    asynchronous = optional("asynchronous")
    if asynchronous is not None:
        chosen["asynchronous"] = lambda: measured_section(asynchronous, quick)
    transport, convergence = optional("transport"), optional("convergence")
    if transport is not None:
        chosen["transport"] = lambda: transport_section(transport)
    if convergence is not None:
        chosen["convergence"] = lambda: convergence_section(convergence, out, quick)
    compression = optional("compression")
    if compression is not None:
        chosen["compression"] = lambda: compression.measure(out, quick)
    engines = optional("engines")
    if engines is not None:
        chosen["engines"] = lambda: measured_section(engines, quick)
    return chosen


def run_suite(out: Path, *, quick: bool, nvflare_python: str | None = None,
              only: set[str] | None = None, plan: Plan | None = None) -> dict[str, Any]:
    """Run the chosen sections (all by default); write bench.json and REPORT.md in ``out``."""
    os.environ.pop("PEERFLOW_STRICT", None)  # in memory, values go by reference, as in use
    out.mkdir(parents=True, exist_ok=True)
    plan = plan or (QUICK if quick else FULL)
    report: dict[str, Any] = {"mode": "quick" if quick else "full", "plan": asdict(plan),
                              "machine": machine(), "sections": {}, "seconds": {}}
    with _quiet("peerflow"):  # aborts and sync timeouts are results here, not news
        for name, thunk in sections(plan, out, quick, nvflare_python).items():
            if not only or name in only:
                report["sections"][name], report["seconds"][name] = _timed(name, thunk)
    report["machine"]["load_average_after"] = machine()["load_average"]
    report["missing"] = [m for m in ("transport", "convergence") if optional(m) is None]
    write_json(out / "bench.json", report)
    (out / "REPORT.md").write_text(_report.render(report))
    return report


def _timed(name: str, thunk: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], float]:
    """Run one section; a failure becomes its result, so the other sections still run."""
    print(f"benchmarks: {name} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        result = thunk()
    except Exception as exc:
        result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    return result, time.perf_counter() - started


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def machine() -> dict[str, Any]:
    """What the figures were measured on, and how busy it was."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "load_average": list(load),
            "loops": latency.loops(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
