"""``peerflow simulate dgd|gt|gtadam|extra|subgradient-push|push-diging`` and ``push-sum``.

One command function serves every learning algorithm: the command's name picks the
executor class. Registered on ``simulate_app`` when ``_app`` imports this module.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import typer

from peerflow.actors import Config, Network, RunResult
from peerflow.algorithms import (
    LEARNING_EXECUTORS,
    PROBLEMS,
    LearningExecutor,
    Problem,
    PushSumExecutor,
    column_stochastic,
    mixing_matrix,
    push_sum_reference,
)
from peerflow.algorithms._problems import flatten

from . import _options as opt
from . import _render as render
from ._agents import AgentCommand, agent_learning_executors, node_accuracy, simulate_with_agents
from ._app import _exit_on_abort, _simulate, simulate_app
from ._errors import CliInputError
from ._network import build_network

HELP = {
    "dgd": "Distributed gradient descent: x <- W x, then x <- x - a grad f_i(x).",
    "gt": "Gradient tracking: x <- W x - a y;  y <- W y + grad f_i(x) - g.",
    "gtadam": "GTAdam: gradient tracking with an Adam scaling of the tracker.",
    "extra": "EXTRA: exact convergence with a constant step on undirected graphs.",
    "subgradient-push": "Subgradient-push: push-sum weights, for directed graphs.",
    "push-diging": "Push-DIGing: gradient tracking with push-sum, exact on directed graphs.",
}


def simulate_learning(ctx: typer.Context, problem: opt.ProblemName = "two-moons",
                      nodes: opt.Nodes = 6, topology: opt.TopologyName = "random",
                      seed: opt.Seed = 0, iterations: opt.LearningIterations = None,
                      stepsize: opt.Stepsize = None, extra: opt.ExtraParams = None,
                      network: opt.NetworkFile = None, transport: opt.TransportName = "memory",
                      out: opt.Out = None, sync_timeout: opt.SyncTimeout = 10.0,
                      torch_threads: opt.TorchThreads = 1,
                      agent_command: AgentCommand = None) -> None:
    """Train a built-in problem with the algorithm named by the command."""
    algorithm = str(ctx.info_name)
    torch.set_num_threads(torch_threads)
    graph = build_network(topology, nodes, seed, network)
    task = build_problem(problem, len(graph.nodes), seed)
    out_dir = render.prepare_out(out)
    config = Config(graph, {"iterations": task.iterations if iterations is None else iterations,
                            "stepsize": task.stepsize if stepsize is None else stepsize,
                            **parse_extra(extra or [])})
    if agent_command:  # each node's gradients and losses come from an agent process
        executors: dict[str, Any] = agent_learning_executors(algorithm, graph, problem, seed,
                                                             sync_timeout)
    else:
        executor = LEARNING_EXECUTORS[algorithm]
        executors = {node: executor(**task.node_kwargs(i), sync_timeout=sync_timeout)
                     for i, node in enumerate(graph.node_ids)}
    with render.progress_bar(config.extra["iterations"], algorithm) as on_progress:
        result = (simulate_with_agents(config, executors, agent_command, transport=transport,
                                       on_progress=on_progress) if agent_command
                  else _simulate(config, executors, transport, on_progress))
    report_learning(algorithm, task, result, config, executors, out_dir)
    _exit_on_abort(result)


for _name, _help in HELP.items():
    simulate_app.command(_name, help=_help)(simulate_learning)


@simulate_app.command("push-sum")
def simulate_push_sum(nodes: opt.Nodes = 6, topology: opt.TopologyName = "random-directed",
                      seed: opt.Seed = 0, iterations: opt.Iterations = 50,
                      network: opt.NetworkFile = None, transport: opt.TransportName = "memory",
                      out: opt.Out = None, sync_timeout: opt.SyncTimeout = 10.0) -> None:
    """Average random values over a directed graph with push-sum (sender-side weights)."""
    graph = build_network(topology, nodes, seed, network)
    out_dir = render.prepare_out(out)
    x0 = np.random.default_rng(seed).uniform(size=len(graph.nodes))
    executors = {node: PushSumExecutor(float(x), sync_timeout=sync_timeout)
                 for node, x in zip(graph.node_ids, x0, strict=True)}
    config = Config(graph, {"iterations": iterations})
    with render.progress_bar(iterations, "push-sum") as on_progress:
        result = _simulate(config, executors, transport, on_progress)
    metrics = push_sum_metrics(graph, executors, x0, iterations) if result.ok else {}
    histories = {node: ex.value_history for node, ex in executors.items()}
    _report("push-sum", result, config, metrics, out_dir,
            {"push_sum.png": ("push-sum: estimate per node", "value", histories)})
    _exit_on_abort(result)


def build_problem(name: str, nodes: int, seed: int) -> Problem:
    """The built-in problem called ``name`` for ``nodes`` nodes.

    Raises:
        CliInputError: no such problem.
    """
    if name not in PROBLEMS:
        raise CliInputError(f"unknown problem {name!r}; choose one of {sorted(PROBLEMS)}")
    return PROBLEMS[name](nodes, seed)


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
        f"{kind}_loss.png": (f"{algorithm} on {task.name}: {kind} loss per node (per epoch)",
                             "loss", series) for kind, series in curves.items()})


def _report(title: str, result: RunResult, config: Config, metrics: dict[str, Any],
            out: render.Path | None, plots: dict[str, tuple[str, str, dict[str, Any]]]) -> None:
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
    for filename, (plot_title, ylabel, series) in plots.items():
        render.plot_lines(out / filename, series, title=plot_title, ylabel=ylabel)
