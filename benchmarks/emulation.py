"""Emulated networks: consensus on slow, narrow and lossy links, without real hosts.

One sweep over ``EmulatedTransport`` settings (controller links exempt, so only
the peer-to-peer links are shaped). Per setting: how the run ended, the time per
iteration next to what the link model predicts (latency plus the transmission
of one value: a synchronous iteration cannot beat its slowest link), and what
was lost. By default a loss is retransmitted as TCP would (the value arrives
late); with true loss (``loss="drop"``) a lost value surfaces as the receiving
node's sync timeout: the run aborts, naming the node and the iteration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

import peerflow
from peerflow.actors import CONTROLLER_NAME, Config
from peerflow.algorithms import ConsensusExecutor, metropolis_hastings, random_connected
from peerflow.transport import (
    EmulatedTransport,
    Envelope,
    Link,
    MemoryTransport,
    encode,
    frame_size,
)


@dataclass(frozen=True)
class Setting:
    """One point of the sweep."""

    label: str
    link: Link
    payload_floats: int = 0  # 0: a Python float; else a float32 array of this length


SWEEP = (
    Setting("no emulation", Link()),
    Setting("latency 1 ms", Link(latency=0.001)),
    Setting("latency 10 ms", Link(latency=0.010)),
    Setting("latency 10 ms, jitter 5 ms", Link(latency=0.010, jitter=0.005)),
    Setting("64 KB values at 10 MB/s", Link(bandwidth=10e6), payload_floats=16384),
    Setting("64 KB values at 100 MB/s", Link(bandwidth=100e6), payload_floats=16384),
    Setting("drop 1%, retransmitted (rto 200 ms)", Link(drop=0.01)),
    Setting("drop 1%, true loss", Link(drop=0.01, loss="drop")),
)


def run_setting(setting: Setting, nodes: int, iterations: int,
                sync_timeout: float = 0.5) -> dict[str, Any]:
    """Run consensus over one emulated setting and report how it went."""
    network = metropolis_hastings(random_connected(nodes, seed=0))
    values = _values(setting, nodes)
    executors = {node: ConsensusExecutor(value, sync_timeout=sync_timeout)
                 for node, value in zip(network.node_ids, values, strict=True)}
    transport = EmulatedTransport(MemoryTransport(), setting.link, exempt={CONTROLLER_NAME},
                                  seed=0)
    result = peerflow.simulate(Config(network, {"iterations": iterations}), executors,
                               transport)
    done = min(len(ex.value_history) - 1 for ex in executors.values())
    return {"setting": setting.label, "status": result.status, "reason": result.reason,
            "iterations_done": done, "ms_per_iteration": _per_iteration_ms(result, done),
            "model_ms": 1e3 * _model_seconds(setting, values[0]),
            "sent": transport.stats.sent, "retransmitted": transport.stats.retransmitted,
            "dropped": transport.stats.dropped}


def sweep(nodes: int, iterations: int, settings: tuple[Setting, ...] = SWEEP
          ) -> list[dict[str, Any]]:
    """Every setting in turn."""
    return [run_setting(setting, nodes, iterations) for setting in settings]


def markdown(rows: list[dict[str, Any]], nodes: int) -> str:
    """The sweep as a table."""
    lines = [f"| link (random graph, N={nodes}) | status | ms / iteration | link model ms "
             "| envelopes sent | retransmitted | lost | what happened |",
             "|---" * 8 + "|"]
    for r in rows:
        happened = (r["reason"] or f"completed {r['iterations_done']} iterations")[:90]
        per_iteration = f"{r['ms_per_iteration']:.3g}" if r["status"] == "completed" else "—"
        lines.append(f"| {r['setting']} | {r['status']} | {per_iteration} "
                     f"| {r['model_ms']:.3g} | {r['sent']} | {r['retransmitted']} "
                     f"| {r['dropped']} | {happened} |")
    return "\n".join(lines)


def _values(setting: Setting, nodes: int) -> list[Any]:
    rng = np.random.default_rng(0)
    if not setting.payload_floats:
        return [float(x) for x in rng.uniform(size=nodes)]
    return [np.full(setting.payload_floats, rng.uniform(), dtype=np.float32)
            for _ in range(nodes)]


def _model_seconds(setting: Setting, value: Any) -> float:
    """Latency plus the mean jitter plus one value's transmission time."""
    link = setting.link
    transmit = 0.0
    if link.bandwidth != float("inf"):
        probe = Envelope("tell", "a", "b", "value", value, 0)
        transmit = frame_size(encode(probe)) / link.bandwidth
    return link.latency + link.jitter / 2 + transmit


def _per_iteration_ms(result: peerflow.RunResult, done: int) -> float:
    return 1e3 * result.timings.get("run", 0.0) / max(done, 1)
