"""The plots of a learning or push-sum run, drawn from its summary (the run's and
``peerflow show``'s alike), and the summary fields they read besides the results.

Losses are recorded at every epoch's end, so their x axis is in epochs and its label
says how many iterations make one (summary field ``epoch_lengths``). Where the
problem's optimum is known (least squares) an ``OptimumTrace`` follows each node's
distance to it at every iteration (``distance_to_optimum``), for a log plot. Push-sum
gets its estimates and their distance to the true average (log scale).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from peerflow import algorithms

from ._plots import error_series, plot_lines, plot_loss_against

Plots = dict[str, dict[str, Any]]
"""PNG file name -> ``plot_lines`` keyword arguments (series, title, xlabel, ylabel...)."""


class OptimumTrace:
    """An ``on_step`` callback keeping ||x_i - x*|| after every iteration of one node.

    Args:
        optimum: the flat minimizer (``Problem.optimum``).
        initial: the node's parameters before the run, by name.
    """

    def __init__(self, optimum: np.ndarray, initial: Mapping[str, Any]) -> None:
        self.optimum = optimum
        self.distances = [self._distance(initial)]

    def __call__(self, iteration: int, state: Any) -> None:
        del self.distances[iteration + 1:]  # a second run of the executor starts over
        self.distances.append(self._distance(state.x))

    def _distance(self, x: Mapping[str, Any]) -> float:
        return float(np.linalg.norm(algorithms.flatten(x) - self.optimum))


def optimum_traces(task: Any, node_kwargs: list[dict[str, Any]]) -> list[OptimumTrace | None]:
    """One trace per node's executor arguments, or Nones where the optimum is unknown."""
    if task.optimum is None:
        return [None] * len(node_kwargs)
    return [OptimumTrace(task.optimum, {name: p.detach().clone() for name, p
                                        in kwargs["model"].named_parameters() if p.requires_grad})
            for kwargs in node_kwargs]


def epoch_axis(epoch_lengths: Iterable[int | None], iterations: int
               ) -> tuple[str, list[float] | None]:
    """The x label of per-epoch curves, and the epoch of each record (the start, every
    epoch's end, a last partial epoch as a fraction) when all nodes' epochs are
    ``epoch_lengths`` iterations long alike (None: unknown).
    """
    sizes = set(epoch_lengths)
    if None in sizes or not sizes:
        return "epoch", None
    if len(sizes) > 1:
        return f"epoch ({min(sizes)} to {max(sizes)} iterations, by node)", None
    size = int(sizes.pop())
    if size == 1:
        return "iteration", None
    x = [float(epoch) for epoch in range(iterations // size + 1)]
    if iterations % size:
        x.append(iterations / size)
    return f"epoch ({size} iterations each)", x


def epoch_length(executor: Any) -> int | None:
    """Iterations per epoch of a learning executor: its batches, or None if unknown."""
    try:
        return len(getattr(executor, "train_dataloader", None))  # type: ignore[arg-type]
    except TypeError:  # none, or an iterable of unknown length
        return None


def learning_fields(executors: Mapping[str, Any]) -> dict[str, Any]:
    """The summary fields of a learning run that its plots read besides the losses: each
    node's ``epoch_lengths`` (``epoch_length``) and the ``distance_to_optimum`` that an
    ``OptimumTrace`` followed, for the nodes that ran here, in column form
    (``{"iteration": [0, 1, ...], "distance": [...]}``).
    """
    traces = {node: ex.on_step.distances for node, ex in executors.items()  # ran: past x0
              if isinstance(getattr(ex, "on_step", None), OptimumTrace) and
              len(ex.on_step.distances) > 1}
    return {"epoch_lengths": {node: epoch_length(ex) for node, ex in executors.items()},
            "distance_to_optimum": {node: {"iteration": list(range(len(distances))),
                                           "distance": list(distances)}
                                    for node, distances in traces.items()}}


def plot_learning(summary: Mapping[str, Any], out: Path) -> None:
    """Draw a learning run's plots from its summary: ``loss_plots``, and the train loss
    against wall time and against the bytes sent (where they were counted)."""
    results, lengths = summary["results"], summary["epoch_lengths"]
    title = f"{summary['algorithm']} on {summary['metrics'].get('problem')}"
    train = {node: result["train_loss_sequence"] for node, result in results.items()}
    losses = {node: records["loss"] for node, records in train.items()}
    plot_loss_against(out / "train_loss_time.png", f"{title}: train loss against wall time",
                      losses, {node: records["seconds"] for node, records in train.items()},
                      "seconds since the node started")
    plot_loss_against(out / "train_loss_bytes.png", f"{title}: train loss against bytes sent",
                      losses, {node: result.get("bytes_sequence", [])
                               for node, result in results.items()}, "bytes sent by the node")
    draw(out, loss_plots(
        title,
        {kind: {node: result[f"{kind}_loss_sequence"]["loss"]
                for node, result in results.items()} for kind in ("train", "test")},
        [lengths.get(node) for node in results], summary["config"]["extra"]["iterations"],
        distances={node: trace["distance"]
                   for node, trace in summary["distance_to_optimum"].items()}))


def plot_push_sum(summary: Mapping[str, Any], out: Path) -> None:
    """Draw a push-sum run's plots (``push_sum_plots``) from its summary."""
    draw(out, push_sum_plots({node: result["value_history"]
                              for node, result in summary["results"].items()},
                             summary["metrics"]["true_average"]))


def draw(out: Path, plots: Plots) -> None:
    """Write each of ``plots`` into ``out`` (``plot_lines``)."""
    for filename, plot in plots.items():
        plot_lines(out / filename, **plot)


def loss_plots(title: str, losses: Mapping[str, Mapping[str, Sequence[float]]],
               epoch_lengths: Iterable[int | None], iterations: int,
               distances: Mapping[str, Sequence[float]] | None = None) -> Plots:
    """Each kind's loss per node against epochs (``KIND_loss.png``), and the distance to
    the optimum per node and iteration on a log scale where given.

    Args:
        losses: kind ("train", "test") -> node -> the losses recorded at each epoch's end.
        epoch_lengths: iterations per epoch of each node (``epoch_length``).
        distances: node -> ||x_i - x*|| at each iteration (``OptimumTrace.distances``).
    """
    xlabel, x = epoch_axis(epoch_lengths, iterations)
    plots: Plots = {f"{kind}_loss.png": {
        "series": series, "title": f"{title}: {kind} loss per node", "xlabel": xlabel,
        "ylabel": "loss", "x": x} for kind, series in losses.items()}
    if distances:
        plots["distance_to_optimum.png"] = {
            "series": distances, "log": True, "ylabel": "||x_i - x*||",
            "title": f"{title}: distance to the optimum per node"}
    return plots


def push_sum_plots(histories: Mapping[str, Sequence[float]], average: float) -> Plots:
    """The estimates per node, and their distance to the true ``average`` on a log scale."""
    return {
        "push_sum.png": {"series": histories, "title": "push-sum: estimate per node",
                         "ylabel": "value"},
        "push_sum_error.png": {"series": error_series(histories, average), "log": True,
                               "title": "push-sum: distance to the true average",
                               "ylabel": "|x_i - average|"},
    }
