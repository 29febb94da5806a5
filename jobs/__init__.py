"""peerflow.jobs: what a run is and what it leaves behind.

A job (algorithm, network, problem, settings, extra) is one ``Job``; ``ALGORITHMS``
says for each algorithm how to build its executors (in-process, agent-backed) and
report a run, and which ``extra`` keys it reads. ``peerflow simulate``, job files,
controllers, nodes and benchmarks all build and report through these names.
"""

from __future__ import annotations

from ._consensus import (
    consensus_executors,
    consensus_metrics,
    in_process_timeout,
    load_initial_values,
    report_consensus,
)
from ._errors import JobError, parse_file
from ._fedavg import (
    fedavg_config,
    fedavg_controller,
    fedavg_executors,
    initial_weights,
    load_weights,
    report_fedavg,
)
from ._job import CONSENSUS_ITERATIONS, MAX_SYNC_TIMEOUT, Job, load_job
from ._learning import (
    agent_learning_executors,
    build_problem,
    learning_executors,
    learning_metrics,
    node_accuracy,
    push_sum_executors,
    push_sum_metrics,
    report_learning,
    report_push_sum,
)
from ._metrics import NETWORK, Series, run_series
from ._metrics_file import METRICS_FORMATS
from ._metrics_out import (
    NODE_METRICS_LIMIT,
    MetricsOptions,
    write_job_metrics,
    write_run_metrics,
)
from ._network import build_network, check_network, load_network
from ._output import RESULT_FILES, claim_out, prepare_out, provenance, write_json, write_summary
from ._plots import figure, plot_lines
from ._registry import (
    ALGORITHMS,
    LEARNING,
    AlgorithmSpec,
    build_controller,
    build_executors,
    parse_extra,
    report_job,
)
from ._table import Table

__all__ = [
    "ALGORITHMS",
    "CONSENSUS_ITERATIONS",
    "LEARNING",
    "MAX_SYNC_TIMEOUT",
    "METRICS_FORMATS",
    "NETWORK",
    "NODE_METRICS_LIMIT",
    "RESULT_FILES",
    "AlgorithmSpec",
    "Job",
    "JobError",
    "MetricsOptions",
    "Series",
    "Table",
    "agent_learning_executors",
    "build_controller",
    "build_executors",
    "build_network",
    "build_problem",
    "check_network",
    "claim_out",
    "consensus_executors",
    "consensus_metrics",
    "fedavg_config",
    "fedavg_controller",
    "fedavg_executors",
    "figure",
    "in_process_timeout",
    "initial_weights",
    "learning_executors",
    "learning_metrics",
    "load_initial_values",
    "load_job",
    "load_network",
    "load_weights",
    "node_accuracy",
    "parse_extra",
    "parse_file",
    "plot_lines",
    "prepare_out",
    "provenance",
    "push_sum_executors",
    "push_sum_metrics",
    "report_consensus",
    "report_fedavg",
    "report_job",
    "report_learning",
    "report_push_sum",
    "run_series",
    "write_job_metrics",
    "write_json",
    "write_run_metrics",
    "write_summary",
]
