"""Where a run's per-iteration metrics go: ``OUT/metrics.jsonl`` (or ``.csv``) and
``--tensorboard DIR``, both from the same series (``_metrics``), written when the run
ends (completed, aborted or interrupted: what the nodes reached).

Every node's series are written for networks of up to ``NODE_METRICS_LIMIT`` nodes;
above, only the network-wide series and the agents' logged metrics, unless asked
(``node_metrics=True``): 10,000 nodes x 1,000 iterations of consensus are 20 million
records (about 2 GB of JSON Lines).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peerflow.actors import RunResult

from ._learning import build_problem
from ._metrics import NETWORK, Series, agent_logs, run_series
from ._metrics_file import metrics_path, write_metrics_file
from ._registry import ALGORITHMS
from ._tensorboard import check_tensorboard, write_tensorboard

if TYPE_CHECKING:
    from ._job import Job

NODE_METRICS_LIMIT = 1000
"""Networks with more nodes write their nodes' own series only if asked."""


@dataclass(frozen=True, slots=True)
class MetricsOptions:
    """What to write of a run's metrics.

    Attributes:
        format: the metrics file in --out: ``jsonl``, ``csv`` or ``none``.
        tensorboard: the TensorBoard folder (None: none).
        node_metrics: every node's own series; None: if the network has at most
            ``NODE_METRICS_LIMIT`` nodes.
    """

    format: str = "jsonl"
    tensorboard: Path | None = None
    node_metrics: bool | None = None

    def check(self, out: Path | None) -> MetricsOptions:
        """These options, checked before a run (``metrics_path``, ``check_tensorboard``).

        Raises:
            JobError: an unknown format, or --tensorboard cannot be written.
        """
        if out is not None:
            metrics_path(out, self.format)
        check_tensorboard(self.tensorboard)
        return self


def write_run_metrics(out: Path | None, options: MetricsOptions, executors: Mapping[str, Any],
                      *, wall_time: float, iterations: int | None = None,
                      controller: Any = None, classification: bool = False,
                      logged: Mapping[str, Sequence[Any]] | None = None) -> list[str]:
    """Write the run's metrics as ``options`` say (``run_series`` reads the other
    arguments); what was written, as lines for the user.

    Raises:
        JobError: an unknown format.
    """
    path = None if out is None else metrics_path(out, options.format)
    if path is None and options.tensorboard is None:
        return []
    logged = agent_logs(executors) if logged is None else logged
    series = list(run_series(executors, iterations, controller,
                             classification=classification, logged=logged))
    every = options.node_metrics
    if every is None:
        every = len(executors) <= NODE_METRICS_LIMIT
    keys = {node: {r.get("key") for r in records if isinstance(r, Mapping)}
            for node, records in logged.items()}
    left = [] if every else [s for s in series if _node_own(s, keys)]
    series = [s for s in series if every or not _node_own(s, keys)]
    said = [] if not left else [
        f"metrics: {len(executors)} nodes, so only the network-wide series are written; "
        "--node-metrics writes every node's too"]
    if path is not None:  # beside summary.json: not worth a line of its own
        write_metrics_file(path, series)
    if options.tensorboard is not None:
        count = write_tensorboard(options.tensorboard, series, time.time() - wall_time)
        said.append(f"tensorboard: {count} scalars in {options.tensorboard} "
                    f"(tensorboard --logdir {options.tensorboard})")
    return said


def write_job_metrics(result: RunResult, job: Job, out: Path | None, options: MetricsOptions,
                      controller: Any = None) -> list[str]:
    """``write_run_metrics`` for a run whose nodes ran elsewhere (``peerflow controller``):
    from executors built as the nodes built theirs and restored from the results they
    sent (``report_job`` does the same), with what their agents logged."""
    spec = ALGORITHMS[job.algorithm]
    executors: dict[str, Any] = {}
    for node, executor in ({} if spec.controller else spec.build(job)).items():
        with contextlib.suppress(KeyError):  # a node that sent no (or no whole) result
            executor.load_result(result.results[node])
            executors[node] = executor
    logged = {node: r.get("agent_metrics") or [] for node, r in result.results.items()
              if isinstance(r, Mapping)}
    classification = spec.learning and build_problem(
        str(job.problem), len(job.network.nodes), job.seed).classification
    return write_run_metrics(out, options, executors, wall_time=result.wall_time,
                             iterations=job.iterations, controller=controller,
                             classification=classification, logged=logged)


def _node_own(series: Series, logged_keys: Mapping[str, set[Any]]) -> bool:
    """A node's own computed series (not the network's, not what its agent logged)."""
    return series.node != NETWORK and series.name not in logged_keys.get(series.node, ())
