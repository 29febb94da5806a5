"""Learning algorithms and push-sum: executors, metrics and reports.

``peerflow simulate`` and multi-process jobs build their executors and write their
summaries with these functions, so both start from the same state and write the
same summary.json.

Importing this module does not import torch: the torch-using names of
``peerflow.algorithms`` are looked up on the module when a function runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from peerflow import algorithms
from peerflow.actors import Config, Network, RunResult
from peerflow.algorithms import MixingSchedule, consensus_reference, push_sum_reference

from ._errors import JobError
from ._learning_plots import learning_fields, optimum_traces, plot_learning, plot_push_sum
from ._output import reached_results, write_summary
from ._table import Table
from ._traffic import traffic_metrics

if TYPE_CHECKING:
    from peerflow.algorithms import AgentLearning, LearningExecutor, Problem, PushSumExecutor


def build_problem(name: str, nodes: int, seed: int) -> Problem:
    """The built-in problem called ``name`` for ``nodes`` nodes.

    Raises:
        JobError: no such problem, or it needs a package that is not installed.
    """
    if name not in algorithms.PROBLEMS:
        raise JobError(f"unknown problem {name!r}; choose one of "
                       f"{sorted(algorithms.PROBLEMS)}")
    try:
        return algorithms.PROBLEMS[name](nodes, seed)
    except ImportError as exc:
        raise JobError(str(exc)) from exc


def learning_executors(algorithm: str, task: Problem, network: Network, sync_timeout: float,
                       *, agents: bool = False, torch_threads: int = 1) -> dict[str, Any]:
    """One executor per node: in-process, or agent-backed (each agent told its part)."""
    import torch  # loaded by the problem already; set before any node computes

    torch.set_num_threads(torch_threads)
    if agents:
        return dict(agent_learning_executors(algorithm, network, task.name, task.seed,
                                             sync_timeout))
    executor = algorithms.LEARNING_EXECUTORS[algorithm]
    kwargs = [task.node_kwargs(i) for i in range(len(network.nodes))]
    return {node: executor(**node_kwargs, sync_timeout=sync_timeout, on_step=trace)
            for node, node_kwargs, trace in zip(network.node_ids, kwargs,
                                                optimum_traces(task, kwargs), strict=True)}


def agent_learning_executors(algorithm: str, network: Network, problem: str, seed: int,
                             sync_timeout: float) -> dict[str, AgentLearning]:
    """One agent-backed node per network node; each agent is told its part of ``problem``."""
    executor = algorithms.AGENT_LEARNING_EXECUTORS[algorithm]
    nodes = len(network.nodes)
    return {node: executor(f"{node}-agent", sync_timeout=sync_timeout, init_data={
        "problem": problem, "nodes": nodes, "seed": seed, "node_index": index})
        for index, node in enumerate(network.node_ids)}


def node_accuracy(executor: Any) -> float:
    """Test accuracy of a learning node: what its agent reported (also when restored from
    its result), or its own model's; NaN for an agent that reported none."""
    if executor.test_accuracy is not None:
        return float(executor.test_accuracy)
    if isinstance(executor, algorithms.AgentLearning):
        return float("nan")
    return algorithms.accuracy(executor.model, executor.test_dataloader)


def push_sum_executors(network: Network, seed: int, sync_timeout: float
                       ) -> dict[str, PushSumExecutor]:
    """One executor per node, initial values uniform in [0, 1) from ``seed``."""
    x0 = np.random.default_rng(seed).uniform(size=len(network.nodes))
    return {node: algorithms.PushSumExecutor(float(x), sync_timeout=sync_timeout)
            for node, x in zip(network.node_ids, x0, strict=True)}


def learning_metrics(task: Problem, executors: dict[str, LearningExecutor]) -> dict[str, float]:
    """Final losses (mean over nodes), spread between node models, distance to the optimum."""
    models = np.array([algorithms.flatten(ex.state.x) for ex in executors.values()])
    train = [ex.train_loss_sequence[-1].loss for ex in executors.values()]
    metrics = {
        "train_loss_start": float(np.mean([ex.train_loss_sequence[0].loss
                                           for ex in executors.values()])),
        "train_loss": float(np.mean(train)), "train_loss_min": float(np.min(train)),
        "train_loss_max": float(np.max(train)),
        "test_loss": float(np.mean([ex.test_loss_sequence[-1].loss
                                    for ex in executors.values()])),
        "consensus_distance": float(np.max(np.linalg.norm(models - models.mean(0), axis=1))),
        "consensus_max_abs": float(np.abs(models - models.mean(0)).max()),
    }
    if task.classification:
        metrics["test_accuracy"] = float(np.mean([node_accuracy(ex)
                                                  for ex in executors.values()]))
    if task.optimum is not None:
        metrics["distance_to_optimum"] = float(np.max(np.linalg.norm(models - task.optimum,
                                                                     axis=1)))
    return metrics


def push_sum_metrics(network: Network, executors: dict[str, PushSumExecutor], x0: np.ndarray,
                     iterations: int) -> dict[str, float]:
    """Distance to the true average, against plain consensus on the same graph."""
    final = np.array([ex.current_value for ex in executors.values()])
    a = MixingSchedule(network, push=True).matrix
    plain = consensus_reference(MixingSchedule(network).matrix, x0, iterations)[-1]
    return {
        "true_average": float(x0.mean()),
        "final_spread": float(np.ptp(final)),
        "distance_to_average": float(np.max(np.abs(final - x0.mean()))),
        "plain_consensus_distance_to_average": float(np.max(np.abs(plain - x0.mean()))),
        "matrix_form_error": float(np.max(np.abs(
            final - push_sum_reference(a, x0, iterations)[-1]))),
    }


def report_learning(algorithm: str, task: Problem, result: RunResult, config: Config,
                    executors: dict[str, LearningExecutor], out: Path | None, *,
                    plot: Callable[[Mapping[str, Any], Path], None] = plot_learning) -> Table:
    """Write summary.json (an unfinished run: what each node reached; each node's epoch
    length and distance to the optimum where it is known; bytes sent) and draw ``plot`` from it (if
    ``out``); the summary table."""
    metrics = {**learning_metrics(task, executors), **traffic_metrics(executors)} \
        if result.ok else {}
    return _report(algorithm, result, config, {"problem": task.name, **metrics}, out,
                   executors, plot, **learning_fields(executors))


def report_push_sum(result: RunResult, config: Config, executors: dict[str, PushSumExecutor],
                    out: Path | None) -> Table:
    """Write summary.json (an unfinished run: what each node reached) and the plots of
    the estimates and of their distance to the average (if ``out``); the summary table."""
    x0 = np.array([ex.initial_value for ex in executors.values()], dtype=float)
    metrics = ({**push_sum_metrics(config.network, executors, x0, config.extra["iterations"]),
                **traffic_metrics(executors)}
               if result.ok else {"true_average": float(x0.mean())})  # for the error plot
    return _report("push-sum", result, config, metrics, out, executors, plot_push_sum)


def _report(title: str, result: RunResult, config: Config, metrics: dict[str, Any],
            out: Path | None, executors: Mapping[str, Any],
            plot: Callable[[Mapping[str, Any], Path], None], **fields: Any) -> Table:
    rows = [("status", result.status), ("nodes", str(len(config.network.nodes)))]
    rows += [(key, str(value)) for key, value in config.extra.items()]
    rows += [(name.replace("_", " "), f"{value:.4g}" if isinstance(value, float) else str(value))
             for name, value in metrics.items()]
    rows.append(("wall time", f"{result.wall_time:.3f} s"))
    table = Table(title, rows)
    if out is not None:
        plot(write_summary(out, title, result, config, table, metrics=metrics,
                           **reached_results(result, executors), **fields), out)
    return table
