"""REPORT.md, the summary table, and the README's performance section, from bench.json."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .latency import AIM_RATIO

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
SummaryRow = tuple[str, str, str, str, str]  # figure, peerflow, floor or reference, ratio, aim


def summary(report: dict[str, Any]) -> list[SummaryRow]:
    """The headline figures, each with its floor (or reference) and ratio."""
    sections = report["sections"]
    rows: list[SummaryRow] = []
    for key, build in (("latency", _latency_rows), ("transport", _transport_rows),
                       ("scale", _scale_rows), ("nvflare", _nvflare_rows)):
        if key in sections and not {"error", "skipped"} & sections[key].keys():
            rows += build(sections[key])
    return rows


def summary_markdown(report: dict[str, Any]) -> str:
    lines = ["| figure | peerflow | floor or reference | ratio | aim |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in summary(report)]
    return "\n".join(lines)


def render(report: dict[str, Any]) -> str:
    """The whole REPORT.md."""
    m = report["machine"]
    load = [", ".join(f"{x:.2f}" for x in m.get(key, [])) for key in
            ("load_average", "load_average_after")]
    parts = [f"# peerflow benchmarks ({report['mode']} run)", "",
             f"Measured {m['date']} on {m['platform']}, Python {m['python']}, {m['cpus']} CPUs "
             f"(load average {load[0]} before, {load[1]} after). The machine is shared: "
             "compare the ratios to "
             "the floors measured in the same run, not absolute times. Latency ratios are on "
             "CPU time of the event-loop thread; wall-time medians and p95 are beside them.",
             "", "## Summary", "", summary_markdown(report), ""]
    for name, section in report["sections"].items():
        parts += [f"## {name.capitalize()}", ""]
        parts += [_failed(section)] if "error" in section else _section(name, section)
        parts.append("")
    parts += _gaps(report)
    return "\n".join(parts).rstrip() + "\n"


def readme_section(report: dict[str, Any], source: str) -> str:
    """The README's performance section: the summary table and where it comes from."""
    return "\n".join([
        f"Generated from `{source}` ({report['mode']} run, {report['machine']['date']}, "
        f"{report['machine']['cpus']} CPUs shared with other work) by "
        "`peerflow bench --readme README.md`; every figure beside its floor, measured in "
        "the same run. Latency ratios are peerflow / bare asyncio on the event-loop thread's "
        "CPU time; random graphs are `random_connected(n, mean_degree=4)`, whose mean degree "
        "is raised to ln n where that is higher (about 7 at N = 1000). The full tables and "
        "plots are in that folder's REPORT.md.", "",
        summary_markdown(report)])


def update_readme(readme: Path, section: str) -> None:
    """Replace the text between the bench markers (adding a Performance section if none)."""
    block = f"{START}\n{section}\n{END}"
    text = readme.read_text() if readme.exists() else "# peerflow\n"
    if START in text and END in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text,
                      flags=re.S)
    else:
        text = text.rstrip() + f"\n\n## Performance\n\n{block}\n"
    readme.write_text(text)


def _latency_rows(section: dict[str, Any]) -> list[SummaryRow]:
    rows = []
    for table in ("node count (memory)", "node count (tcp, tls)"):
        for r in section["tables"].get(table, []):
            per_node = [r[side]["cpu"] / r["nodes"] * 1e6 for side in ("floor", "peerflow")]
            per_msg = r["peerflow"]["cpu"] / max(r["messages"], 1) * 1e6
            aim = ("< 3: " + ("met" if r["ratio"] < AIM_RATIO else
                              f"missed by {r['ratio'] / AIM_RATIO - 1:.0%}")
                   if r["nodes"] == 1000 and r["transport"] == "memory" else "")
            rows.append((f"consensus {r['label']}, {r['transport']}, {r['loop']}: µs per "
                         f"node-iteration ({per_msg:.2g} µs per message)",
                         f"{per_node[1]:.3g}", f"{per_node[0]:.3g} (bare asyncio)",
                         f"{r['ratio']:.2f}", aim))
    return rows


def _transport_rows(section: dict[str, Any]) -> list[SummaryRow]:
    """Issue 3's aims: round trip, TLS against TCP, 16 MB throughput."""
    trip, big = section["figures"]["round_trip_us"], section["figures"]["throughput_gb_s"]["16 MB"]
    bare, same = trip["asyncio streams, bare 64 B echo"], trip["asyncio streams, same envelopes"]
    tcp, tls = trip["peerflow tcp"], trip["peerflow tls"]
    share = big["peerflow tcp"] / big["socket pair"]
    return [
        ("64 B round trip between two processes, tcp, µs", f"{tcp:.3g}",
         f"{bare:.3g} (asyncio streams, bare echo)", f"{tcp / bare:.2f}", _aim(tcp / bare, 1.5)),
        ("the same, against streams carrying the same envelopes", f"{tcp:.3g}",
         f"{same:.3g} (asyncio streams + codec)", f"{tcp / same:.2f}", _aim(tcp / same, 1.5)),
        ("64 B round trip, tls against tcp, µs", f"{tls:.3g}", f"{tcp:.3g} (peerflow tcp)",
         f"{tls / tcp:.2f}", _aim(tls / tcp, 2.0)),
        ("16 MB one-way throughput, tcp, GB/s", f"{big['peerflow tcp']:.3g}",
         f"{big['socket pair']:.3g} (blocking socket pair)", f"{share:.0%}",
         ">= 50%: " + ("met" if share >= 0.5 else f"missed by {0.5 - share:.0%} points")),
        ("16 MB one-way throughput, tls against tcp, GB/s", f"{big['peerflow tls']:.3g}",
         f"{big['peerflow tcp']:.3g} (peerflow tcp); tls socket pair {big['tls socket pair']:.3g}",
         f"{big['peerflow tcp'] / big['peerflow tls']:.2f}x slower",
         _aim(big["peerflow tcp"] / big["peerflow tls"], 2.0)),
        ("16 MB one-way throughput, blocking sockets: tls against plain, GB/s",
         f"{big['tls socket pair']:.3g} (tls socket pair)",
         f"{big['socket pair']:.3g} (socket pair)",
         f"{big['socket pair'] / big['tls socket pair']:.2f}x slower",
         "none: what TLS costs on this machine"),
    ]


def _aim(ratio: float, limit: float) -> str:
    verdict = "met" if ratio <= limit else f"missed by {ratio / limit - 1:.0%}"
    return f"<= {limit:g}x: {verdict}"


def _scale_rows(section: dict[str, Any]) -> list[SummaryRow]:
    big, flat = section["largest"], section["flat"]
    passed_all = all(r["within_budget"] for r in big["rows"])
    rows: list[SummaryRow] = [(
        f"largest random graph doing 10 iterations within {big['budget_s']:g} s (one process)",
        f"{'≥ ' if passed_all else ''}{big['largest']} nodes",
        f"tried {[r['nodes'] for r in big['rows']]}"
        + (" (all passed: a lower bound)" if passed_all else ""), "", "")]
    ours, floor = big.get("mb_per_node"), big.get("floor_mb_per_node")
    if ours is not None and floor:
        rows.append(("peak RSS per node at that size", f"{ours * 1024:.3g} KB",
                     f"{floor * 1024:.3g} KB (bare asyncio); NVFlare "
                     f"{big['nvflare_mb_per_node']:g} MB", f"{ours / floor:.2f}", ""))
    if "growth_mb" in flat:
        rows.append((f"RSS growth over {flat['iterations']:,} iterations (10-node ring)",
                     f"{flat['growth_mb']:+.2f} MB", "0 (flat)", "", "flat"))
    return rows


def _nvflare_rows(section: dict[str, Any]) -> list[SummaryRow]:
    from .nvflare import nvflare_figures, ratios

    rows = []
    for job, entry in section["jobs"].items():
        theirs, source = nvflare_figures(entry)
        for transport, ours in entry["peerflow"].items():
            wall, memory = ratios(entry, ours)
            rows.append((f"NVFlare's {job} job ({entry['nodes']} nodes, {entry['iterations']} "
                         f"iterations), peerflow {transport}: whole command wall s, peak MB",
                         f"{ours.get('wall_s', float('nan')):.3g} s, "
                         f"{ours.get('peak_rss_mb', float('nan')):.0f} MB",
                         f"NVFlare {theirs['wall_s']:.3g} s, {theirs['peak_rss_mb']:.0f} MB "
                         f"({source})", f"{wall} faster, {memory} less memory", ""))
    return rows


def _section(name: str, section: dict[str, Any]) -> list[str]:
    if "skipped" in section:
        return [f"Skipped: {section['skipped']}."]
    if name == "latency":
        out = []
        for title, table in section["markdown"].items():
            out += [f"### {title}", "", table, ""]
        return out + section["aim"]
    if name == "scale":
        return _scale_markdown(section)
    if name == "convergence":
        return [section["markdown"].replace("# Convergence", "").strip(), "",
                "Plots: convergence/*.png."]
    return [section["markdown"]]


def _scale_markdown(section: dict[str, Any]) -> list[str]:
    big, flat = section["largest"], section["flat"]
    lines = ["| nodes | completed | within budget | run s | steady ms / iteration "
             "| KB per node (peak RSS) |", "|---|---|---|---|---|---|"]
    for r in big["rows"]:
        lines.append(f"| {r['nodes']} | {r.get('ok')} | {r['within_budget']} "
                     f"| {r.get('run_s', float('nan')):.3g} "
                     f"| {1e3 * r.get('iteration_s', float('nan')):.3g} "
                     f"| {1024 * r.get('mb_per_node', float('nan')):.3g} |")
    lines += ["", f"Memory over {flat.get('iterations', 0):,} iterations of a 10-node ring: "
              f"{flat.get('growth_mb', float('nan')):+.2f} MB from 10% of the run to its end "
              f"({flat.get('growth_kb_per_1k_iterations', float('nan')):.2g} KB per 1000 "
              "iterations); plot memory_flat.png."]
    return lines


def _failed(section: dict[str, Any]) -> str:
    return f"**Failed:** `{section['error']}` (traceback in bench.json)."


def _gaps(report: dict[str, Any]) -> list[str]:
    gaps = [f"- benchmarks/{m}.py is not in this checkout: its section did not run."
            for m in report.get("missing", [])]
    gaps += [f"- section {name} failed: {s['error']}" for name, s in report["sections"].items()
             if "error" in s]
    return ["## Gaps", "", *gaps, ""] if gaps else []
