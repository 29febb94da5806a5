"""peerflow.jobs: what a run is and what it leaves behind.

A job (algorithm, network, problem, settings, extra) is one ``Job``; ``ALGORITHMS``
says for each algorithm how to build its executors (in-process, agent-backed) and
report a run, and which ``extra`` keys it reads. ``peerflow simulate``, job files,
controllers, nodes and benchmarks all build and report through these names.
"""

from __future__ import annotations

from ._compare import (
    Comparison,
    check_comparable,
    comparison_curves,
    key_figures,
    plot_comparison,
    run_kind,
)
from ._consensus import (
    consensus_executors,
    consensus_metrics,
    in_process_timeout,
    load_initial_values,
    plot_consensus,
    report_consensus,
)
from ._errors import JobError, parse_file
from ._fedavg import (
    fedavg_config,
    fedavg_controller,
    fedavg_executors,
    initial_weights,
    load_weights,
    plot_fedavg,
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
from ._learning_plots import (
    OptimumTrace,
    epoch_axis,
    epoch_length,
    loss_plots,
    plot_learning,
    plot_push_sum,
    push_sum_plots,
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
from ._output import (
    RESULT_FILES,
    SUMMARY_FORMAT,
    SUMMARY_VERSION,
    claim_out,
    prepare_out,
    provenance,
    reached_results,
    write_json,
    write_summary,
)
from ._plots import figure, plot_lines, plot_loss_against
from ._ray import connect_ray, import_ray, run_on_ray
from ._registry import (
    ALGORITHMS,
    LEARNING,
    AlgorithmSpec,
    build_controller,
    build_executors,
    parse_extra,
    report_job,
)
from ._replay import plot_summary, read_summary, summary_table
from ._setup import RunSetup, run_setup, topology_of, use_run_setup
from ._table import Table
from ._traffic import bytes_sent, compress_extra, traffic_metrics

__all__ = [
    "ALGORITHMS",
    "CONSENSUS_ITERATIONS",
    "LEARNING",
    "MAX_SYNC_TIMEOUT",
    "METRICS_FORMATS",
    "NETWORK",
    "NODE_METRICS_LIMIT",
    "OptimumTrace",
    "RESULT_FILES",
    "SUMMARY_FORMAT",
    "SUMMARY_VERSION",
    "AlgorithmSpec",
    "Comparison",
    "Job",
    "JobError",
    "MetricsOptions",
    "RunSetup",
    "Series",
    "Table",
    "agent_learning_executors",
    "build_controller",
    "bytes_sent",
    "build_executors",
    "build_network",
    "build_problem",
    "check_comparable",
    "check_network",
    "comparison_curves",
    "claim_out",
    "compress_extra",
    "connect_ray",
    "consensus_executors",
    "consensus_metrics",
    "epoch_axis",
    "epoch_length",
    "fedavg_config",
    "fedavg_controller",
    "fedavg_executors",
    "figure",
    "import_ray",
    "in_process_timeout",
    "initial_weights",
    "key_figures",
    "learning_executors",
    "learning_metrics",
    "load_initial_values",
    "load_job",
    "load_network",
    "load_weights",
    "loss_plots",
    "node_accuracy",
    "parse_extra",
    "parse_file",
    "plot_consensus",
    "plot_fedavg",
    "plot_learning",
    "plot_lines",
    "plot_loss_against",
    "plot_comparison",
    "plot_push_sum",
    "plot_summary",
    "prepare_out",
    "provenance",
    "push_sum_executors",
    "push_sum_metrics",
    "push_sum_plots",
    "reached_results",
    "read_summary",
    "report_consensus",
    "report_fedavg",
    "report_job",
    "report_learning",
    "report_push_sum",
    "traffic_metrics",
    "run_on_ray",
    "run_kind",
    "run_series",
    "run_setup",
    "summary_table",
    "topology_of",
    "use_run_setup",
    "write_job_metrics",
    "write_json",
    "write_run_metrics",
    "write_summary",
]
