"""The suite's PNG plots (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from peerflow.jobs import figure

from .latency import AIM_RATIO, Row

__all__ = ["figure", "flat_plot", "latency_plots", "lines", "ratio_bars"]


def lines(axes: Any, series: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> None:
    """One marked line per label; floors dashed."""
    for label, (xs, ys) in series.items():
        axes.plot(xs, ys, marker="o", lw=1.2, ls="--" if "floor" in label else "-",
                  label=label)


def latency_plots(tables: Mapping[str, Sequence[Row]], out: Path) -> None:
    """Per node-iteration by node count, per iteration by payload, every ratio against the aim."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    for r in tables.get("node count (memory)", []):
        for side in ("floor", "peerflow"):
            xs, ys = series.setdefault(f"{side} ({r.loop})", ([], []))
            xs.append(r.nodes)
            ys.append(r.per_node_us(side))
    with figure(out / "latency_node_count.png", "consensus: CPU time per node-iteration",
                "nodes (random graph)", "µs per node-iteration", logx=True, logy=True) as ax:
        lines(ax, series)
    series = {}
    for r in [*tables.get("payload (memory)", []), *tables.get("payload (tcp, tls)", [])]:
        for side in ("floor", "peerflow"):
            xs, ys = series.setdefault(f"{side} ({r.transport})", ([], []))
            xs.append(max(r.payload_bytes, 8))
            ys.append(r.per_node_us(side) * r.nodes / 1e3)
    with figure(out / "latency_payload.png", "consensus on a ring of 8: time per iteration",
                "payload bytes (scalar = 8)", "ms per iteration", logx=True, logy=True) as ax:
        lines(ax, series)
    ratio_bars([r for table in tables.values() for r in table], out / "latency_ratios.png")


def ratio_bars(rows: Sequence[Row], path: Path) -> None:
    """Every case's CPU-time ratio to its floor, with the aim (3x at N = 1000) as a line."""
    labels = [f"{r.label} · {r.transport} · {r.loop}" for r in rows]
    with figure(path, "peerflow / bare-asyncio floor (CPU time per iteration)", "ratio", "",
                size=(9, 0.32 * len(rows) + 1.5)) as ax:
        ax.barh(labels, [r.ratio for r in rows], color="tab:blue")
        ax.axvline(AIM_RATIO, color="tab:red", ls="--", label=f"aim at N=1000: {AIM_RATIO:g}")
        ax.invert_yaxis()


def flat_plot(flat: Mapping[str, Any], out: Path) -> None:
    """Resident memory against iterations done (the flat-memory check)."""
    samples = flat.get("samples") or []
    if not samples:
        return
    growth = (f" ({flat['growth_mb']:+.2f} MB from 10% of the run to its end)"
              if "growth_mb" in flat else "")
    with figure(out / "memory_flat.png", f"10-node ring: resident memory over the run{growth}",
                "iterations done", "RSS (MB)", from_zero=True) as ax:
        lines(ax, {"peerflow": ([s[0] for s in samples], [s[1] for s in samples])})
