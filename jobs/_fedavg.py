"""Federated averaging jobs: sites, initial weights, the controller and the report.

A fedavg job's nodes are its sites (the network's node names; its edges are not
used: sites talk to the controller only). ``iterations`` is NVFlare's
``num_rounds``; ``extra`` holds the keys of ``FedAvgTunables``: ``min_clients``,
``wait_time_after_min_received``, ``train_timeout`` (0: none) and ``local_epochs``.
The global model starts from ``initial_weights`` (an ``.npz`` file, or JSON
``{name: nested list}`` read as float32), else from the built-in problem's model.
In-process sites train that problem's data (``ProblemTrainer``); agent-backed
sites relay "train" to external trainers. When the global model is the problem's,
the controller evaluates it after every round (train loss over all sites' data,
test loss and accuracy).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from peerflow import algorithms
from peerflow.actors import Config, RunResult
from peerflow.algorithms import (
    FedAvgTunables,
    ResultError,
    RoundRecord,
    ScatterAndGather,
    as_weights,
    sites_config,
)

from ._errors import JobError, parse_file
from ._learning import build_problem
from ._output import write_summary
from ._plots import plot_lines
from ._table import Table

FEDAVG_DEFAULTS = {"iterations": 5, "stepsize": 0.1}
"""Rounds (NVFlare's ``num_rounds`` default) and the local SGD step of in-process sites."""
WEIGHTS_FILE = "global_weights.npz"

Weights = dict[str, np.ndarray]


def load_weights(path: Path) -> Weights:
    """Read weights, name -> array, from ``.npz`` or JSON (numbers as float32).

    Raises:
        JobError: the file is missing, unreadable or not a map of names to numeric arrays.
    """
    where = f"initial weights {str(path)!r}"
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                data: Any = {name: archive[name] for name in archive.files}
        except FileNotFoundError:
            raise JobError(f"{where} does not exist") from None
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise JobError(f"{where}: not a readable .npz file: {exc}") from exc
    else:
        data = parse_file(path, "initial weights", json.loads, json.JSONDecodeError, "JSON")
        if isinstance(data, dict):
            data = {name: _float32(value, f"{where}: {name!r}") for name, value in data.items()}
    try:
        return as_weights(data, where)
    except ResultError as exc:
        raise JobError(str(exc)) from None


def _float32(value: Any, where: str) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise JobError(f"{where} is not an array of numbers: {exc}") from None


def initial_weights(job: Any) -> Weights:
    """The job's initial global model: its file's, else its problem's model."""
    if job.initial_weights is not None:
        return load_weights(Path(job.initial_weights))
    return algorithms.problem_weights(build_problem(str(job.problem), len(job.network.nodes),
                                                    job.seed))


def fedavg_executors(job: Any, *, agents: bool = False,
                     initial: Weights | None = None) -> dict[str, Any]:
    """One site per node: agent-backed (agent id ``SITE-agent``), or training the problem.

    Args:
        initial: the initial weights, if known here: in-process sites refuse weights
            that are not the problem's model.

    Raises:
        JobError: in-process sites, and initial weights that are not the problem's model.
    """
    sites = job.network.node_ids
    if agents:
        return {site: algorithms.AgentTrainer(f"{site}-agent") for site in sites}
    problem = build_problem(str(job.problem), len(sites), job.seed)
    if initial is not None and not _fits(initial, problem):
        raise JobError(f"the initial weights are not {problem.name}'s model (names and "
                       "shapes): in-process sites train that model; give --agent-command "
                       "for a trainer of your own")
    import torch  # loaded by the problem already; set before any site trains

    torch.set_num_threads(job.torch_threads)
    epochs = FedAvgTunables.from_extra(job.extra).local_epochs
    return {site: algorithms.TrainerExecutor(algorithms.ProblemTrainer(
        problem, index, local_epochs=epochs, stepsize=job.stepsize))
        for index, site in enumerate(sites)}


def fedavg_controller(job: Any) -> ScatterAndGather:
    """The job's ScatterAndGather; it evaluates the global model each round if it is the
    problem's.

    Raises:
        JobError: an argument is out of range (e.g. more min_clients than sites).
    """
    weights = initial_weights(job)
    problem = build_problem(str(job.problem), len(job.network.nodes), job.seed)

    def evaluate(record: RoundRecord, model: Weights) -> None:
        record.metrics = algorithms.global_metrics(problem, model)

    extra = FedAvgTunables.from_extra(job.extra)
    try:
        return ScatterAndGather(
            fedavg_config(job), weights, min_clients=extra.min_clients,
            num_rounds=job.iterations,
            wait_time_after_min_received=extra.wait_time_after_min_received,
            train_timeout=extra.train_timeout,
            on_round_done=evaluate if _fits(weights, problem) else None)
    except ValueError as exc:
        raise JobError(str(exc)) from None


def fedavg_config(job: Any) -> Config:
    """The sites, without neighbours, and the job's parameters."""
    return sites_config(job.network.node_ids, {**job.config.extra, **{
        key: value for key, value in FedAvgTunables.defaults().items()
        if key not in job.extra}})


def _fits(weights: Weights, problem: Any) -> bool:
    model = algorithms.problem_weights(problem)
    return model.keys() == weights.keys() and all(
        model[name].shape == weights[name].shape for name in model)


def report_fedavg(result: RunResult, job: Any, controller: ScatterAndGather,
                  out: Path | None) -> Table:
    """Write summary.json, the loss plot and the final global weights (if ``out``);
    the summary table."""
    rounds = controller.rounds
    start = (algorithms.global_metrics(build_problem(str(job.problem), len(job.network.nodes),
                                                     job.seed), initial_weights(job))
             if rounds and rounds[0].metrics else {})
    final = rounds[-1].metrics if rounds else {}
    metrics = {**{f"{k}_start": v for k, v in start.items()}, **final}
    rows = [("status", result.status), ("sites", str(len(controller.targets))),
            ("rounds", f"{len(rounds)} of {controller.num_rounds}"),
            ("min clients", str(controller.min_clients)),
            ("wait after min", f"{controller.wait_time_after_min_received:g} s"),
            ("results aggregated", str(sum(len(r.weights) for r in rounds))),
            ("results late", str(sum(len(r.late) for r in rounds)))]
    rows += [(name.replace("_", " "), f"{value:.4g}") for name, value in metrics.items()]
    rows.append(("wall time", f"{result.wall_time:.3f} s"))
    table = Table("fedavg", rows)
    if out is not None:
        plot_fedavg(write_summary(out, "fedavg", result, controller.config, table,
                                  problem=job.problem, metrics=metrics,
                                  rounds=[r.to_dict() for r in rounds]), out)
        if result.ok:
            np.savez(out / WEIGHTS_FILE, **controller.global_weights)
    return table


def plot_fedavg(summary: Mapping[str, Any], out: Path) -> None:
    """Draw the global model's losses, round by round, from a fedavg run's summary (none
    if the global model is not the problem's: no losses were evaluated)."""
    start = {name[:-len("_start")]: value for name, value in summary["metrics"].items()
             if name.endswith("_start")}
    if not start:
        return
    series = {name: [start[name], *(r["metrics"][name] for r in summary["rounds"])]
              for name in ("train_loss", "test_loss")}
    plot_lines(out / "fedavg_loss.png", series, xlabel="round", ylabel="loss",
               title="fedavg: the global model's loss (round 0: the initial model)")
