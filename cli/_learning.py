"""Learning algorithms and push-sum: builders and reports for the simulator and for jobs.

``peerflow simulate dgd|gt|gtadam|extra|subgradient-push|push-diging|push-sum``
(commands in ``_app``) and multi-process jobs (``_jobs``) build their executors and
write their summaries with these functions, so both start from the same state and
write the same summary.json.

Importing this module does not import torch: the torch-using names of
``peerflow.algorithms`` are looked up on the module when a function runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from peerflow import algorithms
from peerflow.actors import Config, Network, RunResult
from peerflow.algorithms import column_stochastic, mixing_matrix, push_sum_reference

from . import _render as render
from ._agents import agent_learning_executors, node_accuracy
from ._errors import CliInputError

if TYPE_CHECKING:
    from peerflow.algorithms import LearningExecutor, Problem, PushSumExecutor

HELP = {
    "dgd": "Distributed gradient descent: x <- W x, then x <- x - a grad f_i(x).",
    "gt": "Gradient tracking: x <- W x - a y;  y <- W y + grad f_i(x) - g.",
    "gtadam": "GTAdam: gradient tracking with an Adam scaling of the tracker.",
    "extra": "EXTRA: exact convergence with a constant step on undirected graphs.",
    "subgradient-push": "Subgradient-push: push-sum weights, for directed graphs.",
    "push-diging": "Push-DIGing: gradient tracking with push-sum, exact on directed graphs.",
}
"""The learning algorithms by command name (the keys of ``LEARNING_EXECUTORS``)."""


def build_problem(name: str, nodes: int, seed: int) -> Problem:
    """The built-in problem called ``name`` for ``nodes`` nodes.

    Raises:
        CliInputError: no such problem.
    """
    if name not in algorithms.PROBLEMS:
        raise CliInputError(f"unknown problem {name!r}; choose one of "
                            f"{sorted(algorithms.PROBLEMS)}")
    return algorithms.PROBLEMS[name](nodes, seed)


def learning_config(network: Network, task: Problem, iterations: int | None,
                    stepsize: float | None, extra: dict[str, float]) -> Config:
    """The run's config: iterations and step size (the problem's unless given), then extra."""
    return Config(network, {"iterations": task.iterations if iterations is None else iterations,
                            "stepsize": task.stepsize if stepsize is None else stepsize, **extra})


def learning_executors(algorithm: str, task: Problem, network: Network, sync_timeout: float,
                       *, agents: bool = False, torch_threads: int = 1) -> dict[str, Any]:
    """One executor per node: in-process, or agent-backed (each agent told its part)."""
    import torch  # loaded by the problem already; set before any node computes

    torch.set_num_threads(torch_threads)
    if agents:
        return dict(agent_learning_executors(algorithm, network, task.name, task.seed,
                                             sync_timeout))
    executor = algorithms.LEARNING_EXECUTORS[algorithm]
    return {node: executor(**task.node_kwargs(i), sync_timeout=sync_timeout)
            for i, node in enumerate(network.node_ids)}


def push_sum_executors(network: Network, seed: int, sync_timeout: float
                       ) -> dict[str, PushSumExecutor]:
    """One executor per node, initial values uniform in [0, 1) from ``seed``."""
    x0 = np.random.default_rng(seed).uniform(size=len(network.nodes))
    return {node: algorithms.PushSumExecutor(float(x), sync_timeout=sync_timeout)
            for node, x in zip(network.node_ids, x0, strict=True)}


def parse_extra(items: list[str]) -> dict[str, float]:
    """``["beta1=0.95", ...]`` as ``{"beta1": 0.95}``.

    Raises:
        CliInputError: an item is not KEY=NUMBER.
    """
    parsed: dict[str, float] = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            parsed[key.strip()] = float(value)
        except ValueError:
            raise CliInputError(f"--set {item!r}: expected KEY=NUMBER, e.g. beta1=0.95") from None
        if not key.strip():
            raise CliInputError(f"--set {item!r}: the key is empty")
    return parsed


def learning_metrics(task: Problem, executors: dict[str, LearningExecutor]) -> dict[str, float]:
    """Final losses (mean over nodes), spread between node models, distance to the optimum."""
    from peerflow.algorithms._problems import flatten

    models = np.array([flatten(ex.state.x) for ex in executors.values()])
    train = [ex.train_loss_sequence[-1][1] for ex in executors.values()]
    metrics = {
        "train_loss_start": float(np.mean([ex.train_loss_sequence[0][1]
                                           for ex in executors.values()])),
        "train_loss": float(np.mean(train)), "train_loss_min": float(np.min(train)),
        "train_loss_max": float(np.max(train)),
        "test_loss": float(np.mean([ex.test_loss_sequence[-1][1] for ex in executors.values()])),
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
    w, _ = mixing_matrix(network)
    a, _ = column_stochastic(network)
    plain = np.linalg.matrix_power(w, iterations) @ x0
    return {
        "true_average": float(x0.mean()),
        "final_spread": float(np.ptp(final)),
        "distance_to_average": float(np.max(np.abs(final - x0.mean()))),
        "plain_consensus_distance_to_average": float(np.max(np.abs(plain - x0.mean()))),
        "matrix_form_error": float(np.max(np.abs(
            final - push_sum_reference(a, x0, iterations)[-1]))),
    }


def report_learning(algorithm: str, task: Problem, result: RunResult, config: Config,
                    executors: dict[str, LearningExecutor], out: render.Path | None) -> None:
    """Print the summary table; write summary.json and the train and test loss plots."""
    metrics = learning_metrics(task, executors) if result.ok else {}
    curves = {kind: {node: [loss for _, loss in getattr(ex, f"{kind}_loss_sequence")]
                     for node, ex in executors.items()} for kind in ("train", "test")}
    _report(algorithm, result, config, {"problem": task.name, **metrics}, out, {
        f"{kind}_loss.png": (f"{algorithm} on {task.name}: {kind} loss per node", "epoch",
                             "loss", series) for kind, series in curves.items()})


def report_push_sum(result: RunResult, config: Config, executors: dict[str, PushSumExecutor],
                    out: render.Path | None) -> None:
    """Print the summary table; write summary.json and the per-node estimates plot."""
    x0 = np.array([ex.initial_value for ex in executors.values()], dtype=float)
    metrics = (push_sum_metrics(config.network, executors, x0, config.extra["iterations"])
               if result.ok else {})
    histories = {node: ex.value_history for node, ex in executors.items()}
    _report("push-sum", result, config, metrics, out,
            {"push_sum.png": ("push-sum: estimate per node", "iteration", "value", histories)})


Plots = dict[str, tuple[str, str, str, dict[str, Any]]]
"""PNG file name -> (title, x label, y label, one series per node)."""


def _report(title: str, result: RunResult, config: Config, metrics: dict[str, Any],
            out: render.Path | None, plots: Plots) -> None:
    rows = [("status", result.status), ("nodes", str(len(config.network.nodes)))]
    rows += [(key, str(value)) for key, value in config.extra.items()]
    rows += [(name.replace("_", " "), f"{value:.4g}" if isinstance(value, float) else str(value))
             for name, value in metrics.items()]
    rows.append(("wall time", f"{result.wall_time:.3f} s"))
    render.print_table(title, rows)
    if out is None:
        return
    render.write_json(out / "summary.json", {"algorithm": title, **result.to_dict(),
                                             "metrics": metrics, "config": config.to_dict()})
    for filename, (plot_title, xlabel, ylabel, series) in plots.items():
        render.plot_lines(out / filename, series, title=plot_title, xlabel=xlabel, ylabel=ylabel)
