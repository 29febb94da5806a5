"""Latency: peerflow consensus per iteration and per message, against a bare-asyncio floor.

Both sides run the same network, initial values, iteration count and event loop
(asyncio or uvloop), interleaved run by run. Start-up is excluded by timing
inside the run: the first node stamps wall and CPU time at each exchange, and
the steady-state iteration time is read from those stamps after a warm-up.
The machines are shared: the ratio is taken on CPU time (this thread's, which
other processes' load does not inflate); wall-time medians and p95 are kept too.
peerflow runs ``ConsensusExecutor`` through ``peerflow.run`` on the non-strict
in-memory transport (values by reference, as in production).

``python -m benchmarks.latency`` prints issue 2's table: N = 10, 100, 1000.
"""

from __future__ import annotations

import gc
import os
import statistics
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import anyio
import numpy as np

import peerflow
from peerflow.actors import Config, Network
from peerflow.algorithms import ConsensusExecutor, metropolis_hastings, random_connected

from ._floor import Stamp, floor_run, stamp

AIM_RATIO = 3.0
"""Issue 2's aim: peerflow at most 3x the floor per iteration at N = 1000."""


@dataclass(frozen=True)
class Case:
    """One measured configuration; both sides run exactly this."""

    label: str
    network: Network
    iterations: int
    payload_bytes: int = 0  # 0: a Python float; else a float32 array of this size
    loop: str = "asyncio"
    transport: str = "memory"

    @property
    def messages(self) -> int:
        """Messages per iteration (the directed edges)."""
        return sum(len(node.neighbors) for node in self.network.nodes)


@dataclass
class Row:
    """The figures of one case: per-iteration times (s) over repeats, and ratios."""

    label: str
    nodes: int
    messages: int
    payload_bytes: int
    loop: str
    transport: str
    iterations: int
    floor: dict[str, float] = field(default_factory=dict)
    peerflow: dict[str, float] = field(default_factory=dict)
    ratio: float = float("nan")  # on CPU time
    ratio_p95: float = float("nan")  # on wall time

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def loops() -> list[str]:
    """The event loops available here: asyncio, and uvloop when installed."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return ["asyncio"]
    return ["asyncio", "uvloop"]


def run_on(loop: str, main: Callable[[], Any]) -> Any:
    """Run the coroutine function ``main`` in a fresh event loop of the named kind."""
    return anyio.run(main, backend="asyncio", backend_options={"use_uvloop": loop == "uvloop"})


def initial_values(case: Case) -> list[Any]:
    """Each node's initial value: uniform floats, or float32 arrays of the payload size."""
    rng = np.random.default_rng(0)
    n = len(case.network.nodes)
    if not case.payload_bytes:
        return [float(x) for x in rng.uniform(size=n)]
    size = max(1, case.payload_bytes // 4)
    return [np.full(size, rng.uniform(), dtype=np.float32) for _ in range(n)]


def _history(case: Case) -> Callable[[Any], Any]:
    """Full history for scalars (as ConsensusExecutor keeps); the last value for arrays."""
    if case.payload_bytes:
        return lambda x0: deque([x0], maxlen=1)
    return lambda x0: [x0]


class _Probe(ConsensusExecutor):
    """``ConsensusExecutor`` that stamps wall and CPU time at each exchange."""

    def __init__(self, initial_value: Any, stamps: list[Stamp], **options: Any) -> None:
        super().__init__(initial_value, **options)
        self.stamps = stamps

    async def exchange(self, value: Any, iteration: int) -> dict[str, Any]:
        self.stamps.append(stamp())
        return await super().exchange(value, iteration)


def peerflow_executors(case: Case, stamps: list[Stamp]) -> dict[str, ConsensusExecutor]:
    """One ``ConsensusExecutor`` per node; the first one stamps its exchanges."""
    history = _history(case)
    executors: dict[str, ConsensusExecutor] = {}
    for index, (node_id, x0) in enumerate(zip(case.network.node_ids, initial_values(case),
                                              strict=True)):
        executor = (_Probe(x0, stamps, sync_timeout=60.0) if index == 0
                    else ConsensusExecutor(x0, sync_timeout=60.0))
        executor.value_history = history(x0)
        executors[node_id] = executor
    return executors


TransportFactory = Callable[[Case], Any]


def _memory(case: Case) -> str:
    return "memory"


TRANSPORTS: dict[str, TransportFactory] = {"memory": _memory}
"""Transport factories by name; other suites (TCP, emulated) add theirs."""


def time_peerflow(case: Case) -> list[Stamp]:
    """Run the case on peerflow and return the first node's exchange stamps."""
    stamps: list[Stamp] = []
    executors = peerflow_executors(case, stamps)
    config = Config(case.network, {"iterations": case.iterations})
    transport = TRANSPORTS[case.transport](case)
    result = run_on(case.loop, lambda: peerflow.run(config, executors, transport,
                                                    config_timeout=120.0))
    if not result.ok:
        raise RuntimeError(f"peerflow run {case.label!r} aborted: {result.reason}")
    return stamps


def time_floor(case: Case) -> list[Stamp]:
    """Run the case on the bare-asyncio floor and return the first node's stamps."""
    stamps: list[Stamp] = []
    initial, history = initial_values(case), _history(case)
    run_on(case.loop, lambda: floor_run(case.network, initial, case.iterations, history, stamps))
    return stamps


def steady(stamps: list[Stamp], warmup: float = 0.1) -> dict[str, float]:
    """Per-iteration seconds after dropping the first ``warmup`` fraction.

    Returns ``cpu`` (mean CPU time), ``mean``, ``median`` and ``p95`` (wall time).
    """
    skip = max(1, int(len(stamps) * warmup))
    times = np.asarray(stamps[skip:]).reshape(-1, 2)
    if len(times) < 2:
        return dict.fromkeys(("cpu", "mean", "median", "p95"), float("nan"))
    gaps = np.diff(times[:, 0])
    return {"cpu": float((times[-1, 1] - times[0, 1]) / len(gaps)), "mean": float(gaps.mean()),
            "median": float(np.median(gaps)), "p95": float(np.percentile(gaps, 95))}


def measure(case: Case, repeats: int) -> Row:
    """Interleave floor and peerflow runs; keep the median over repeats of each statistic."""
    floors, ours = [], []
    for _ in range(repeats):
        for timer, sink in ((time_floor, floors), (time_peerflow, ours)):
            gc.collect()
            sink.append(steady(timer(case)))
    row = Row(case.label, len(case.network.nodes), case.messages, case.payload_bytes, case.loop,
              case.transport, case.iterations, _medians(floors), _medians(ours))
    row.ratio = row.peerflow["cpu"] / row.floor["cpu"]
    row.ratio_p95 = row.peerflow["p95"] / row.floor["p95"]
    return row


def _medians(samples: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def iterations_for(messages: int, seconds: float, lo: int = 20, hi: int = 2000) -> int:
    """Enough iterations for about ``seconds`` of steady state at ~1.5 µs per message."""
    return int(min(hi, max(lo, seconds / (max(messages, 1) * 1.5e-6))))


def random_case(n: int, loop: str, seconds: float, seed: int = 0, **fields: Any) -> Case:
    """Consensus on ``random_connected(n, mean_degree=4)`` with Metropolis-Hastings weights."""
    network = metropolis_hastings(random_connected(n, seed=seed, mean_degree=4.0))
    messages = sum(len(node.neighbors) for node in network.nodes)
    return Case(f"random N={n}", network, iterations_for(messages, seconds), loop=loop,
                **fields)


def node_count_rows(counts: Iterable[int], repeats: int, seconds: float) -> list[Row]:
    """Issue 2's table: random graphs of each size, on every available loop."""
    return [measure(random_case(n, loop, seconds), repeats) for n in counts for loop in loops()]


def format_rows(rows: Iterable[Row]) -> str:
    """A markdown table: per node-iteration and per message, floor, peerflow, ratio."""
    lines = ["| case | loop | transport | msgs/iter | floor µs/node-iter | peerflow µs/node-iter "
             "| floor µs/msg | peerflow µs/msg | ratio (mean) | ratio (p95) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        per_node = [r.floor["cpu"] / r.nodes * 1e6, r.peerflow["cpu"] / r.nodes * 1e6]
        per_msg = [r.floor["cpu"] / max(r.messages, 1) * 1e6,
                   r.peerflow["cpu"] / max(r.messages, 1) * 1e6]
        lines.append(f"| {r.label} | {r.loop} | {r.transport} | {r.messages} "
                     f"| {per_node[0]:.3g} | {per_node[1]:.3g} | {per_msg[0]:.3g} "
                     f"| {per_msg[1]:.3g} | {r.ratio:.2f} | {r.ratio_p95:.2f} |")
    return "\n".join(lines)


def main() -> None:
    """Print issue 2's benchmark: N = 10, 100, 1000 on asyncio and uvloop."""
    os.environ.pop("PEERFLOW_STRICT", None)
    rows = node_count_rows((10, 100, 1000), repeats=5, seconds=1.0)
    print(format_rows(rows))
    at_1000 = [r for r in rows if r.nodes == 1000]
    for r in at_1000:
        verdict = "meets" if r.ratio < AIM_RATIO else "misses"
        print(f"N=1000 {r.loop}: ratio {r.ratio:.2f} {verdict} the aim of {AIM_RATIO:g}")


if __name__ == "__main__":
    main()
