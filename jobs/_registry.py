"""The algorithms a job may name: one entry each, read by ``peerflow simulate``, job
files, controllers, nodes and benchmarks.

Importing this module does not import torch: learning entries load their executors
when they build them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from peerflow import algorithms
from peerflow.actors import CONTROLLER_NAME, DistOptController, RunResult

from . import _learning as learning
from ._async_jobs import (
    async_learning_executors,
    averaging_executors,
    report_async_learning,
    report_averaging,
)
from ._choco_gossip import choco_gossip_executors, report_choco_gossip
from ._consensus import consensus_executors, report_consensus
from ._errors import JobError, invalid
from ._fedavg import (
    FEDAVG_DEFAULTS,
    fedavg_controller,
    fedavg_executors,
    report_fedavg,
)
from ._table import Table

if TYPE_CHECKING:
    from ._job import Job


@dataclass(frozen=True, slots=True)
class AlgorithmSpec:
    """One algorithm: its help, how to build a job's executors (in-process, and
    agent-backed if it has them) and how to report a run of it.

    ``learning`` algorithms train a problem: they read ``problem``, ``stepsize``,
    ``torch_threads`` and ``extra`` (the fields of ``tunables``: finite numbers >= 0, or
    CHOCO's compressor spec; an absent key takes its default there).
    """

    name: str
    help: str
    build: Callable[[Job], dict[str, Any]]
    report: Callable[[RunResult, Job, dict[str, Any], Path | None], Table]
    agents: Callable[[Job], dict[str, Any]] | None = None
    learning: bool = False
    target: str | None = None
    """What the algorithm reaches only with a doubly stochastic W (else None)."""
    controller: Callable[[Job], DistOptController] | None = None
    """A workflow's own controller (fedavg's ScatterAndGather); it reads the learning
    fields, its ``extra`` keys are ``extra`` and ``report`` gets it as the actor named
    ``CONTROLLER_NAME``."""
    extra: type[algorithms.Tunables] | None = None
    """A workflow's ``extra`` keys (a learning algorithm's are its executor's)."""
    job_defaults: Mapping[str, float] | None = None
    """Defaults of ``iterations`` and ``stepsize`` other than the problem's."""

    @property
    def trains(self) -> bool:
        """Whether a job of it reads problem, stepsize, torch_threads and extra."""
        return self.learning or self.controller is not None

    def tunables(self) -> type[algorithms.Tunables]:
        """The struct of the ``extra`` keys the algorithm reads, with their types and
        defaults (``msgspec.structs.fields``); a learning one imports torch."""
        if self.learning and self.extra is None:
            return algorithms.LEARNING_EXECUTORS[self.name].tunables
        return self.extra or algorithms.Tunables

    def extra_keys(self) -> tuple[str, ...]:
        """The ``extra`` keys the algorithm reads."""
        return self.tunables().__struct_fields__

    def extra_defaults(self) -> dict[str, Any]:
        """The algorithm's own ``extra`` keys with their defaults."""
        return self.tunables().defaults()

    def check_extra(self, extra: Mapping[str, Any], where: str) -> dict[str, int | float | str]:
        """``extra`` checked against ``tunables``: only the keys it gives, as numbers.

        Raises:
            JobError: an unknown key (those the algorithm reads are named), or a value
                that is not a finite number >= 0.
        """
        tunables = self.tunables()
        try:
            checked = msgspec.convert(extra, tunables)
        except msgspec.ValidationError as exc:
            raise invalid(exc, tunables, extra, f"{where} of {self.name}") from None
        return {key: getattr(checked, key) for key in extra}


def _learning_executors(job: Job, *, agents: bool = False) -> dict[str, Any]:
    task = learning.build_problem(str(job.problem), len(job.network.nodes), job.seed)
    return learning.learning_executors(job.algorithm, task, job.network, job.sync_timeout,
                                       agents=agents, torch_threads=job.torch_threads)


def _report_learning(result: RunResult, job: Job, executors: dict[str, Any],
                     out: Path | None) -> Table:
    task = learning.build_problem(str(job.problem), len(job.network.nodes), job.seed)
    return learning.report_learning(job.algorithm, task, result, job.config, executors, out)


def _learning(name: str, help: str, target: str | None = None) -> AlgorithmSpec:
    return AlgorithmSpec(name, help, build=_learning_executors, report=_report_learning,
                         agents=partial(_learning_executors, agents=True), learning=True,
                         target=target)


ALGORITHMS: dict[str, AlgorithmSpec] = {spec.name: spec for spec in (
    AlgorithmSpec(
        "consensus", "Average random initial values over a network: x(t+1) = W x(t).",
        build=lambda job: dict(consensus_executors(job.network, job.seed, job.sync_timeout)),
        report=lambda result, job, executors, out: report_consensus(
            result, job.config, executors, job.iterations, out), target="the average"),
    AlgorithmSpec(
        "push-sum", "Average random values over a directed graph with push-sum "
        "(sender-side weights).",
        build=lambda job: dict(learning.push_sum_executors(job.network, job.seed,
                                                           job.sync_timeout)),
        report=lambda result, job, executors, out: learning.report_push_sum(
            result, job.config, executors, out)),
    AlgorithmSpec(
        "choco-gossip", "CHOCO-gossip: average random vectors with compressed messages "
        "(--compress): x <- x + gamma (W x_hat - x_hat), x_hat updated by q = C(x - x_hat).",
        build=choco_gossip_executors, report=report_choco_gossip,
        extra=algorithms.ChocoGossipTunables, target="the average"),
    _learning("dgd", "Distributed gradient descent: x <- W x, then x <- x - a grad f_i(x); "
              "with --compress, gossip compressed with error feedback.", "the optimum"),
    _learning("gt", "Gradient tracking: x <- W x - a y;  y <- W y + grad f_i(x) - g.",
              "the optimum"),
    _learning("gtadam", "GTAdam: gradient tracking with an Adam scaling of the tracker.",
              "the optimum"),
    _learning("extra", "EXTRA: exact convergence with a constant step on undirected graphs.",
              "the optimum"),
    _learning("nids", "NIDS: exact with a constant step below 2/L on undirected graphs, "
              "a wider range than EXTRA's.", "the optimum"),
    _learning("subgradient-push", "Subgradient-push: push-sum weights, for directed graphs."),
    _learning("push-diging",
              "Push-DIGing: gradient tracking with push-sum, exact on directed graphs."),
    _learning("choco-sgd", "CHOCO-SGD: DGD with compressed gossip (--compress), "
              "x <- x + gamma (W x_hat - x_hat), then x <- x - a grad f_i(x).", "the optimum"),
    AlgorithmSpec(
        "gossip", "Asynchronous randomized pairwise gossip (Boyd et al.): a node that wakes "
        "averages with a random neighbour; the sum is kept exactly under delay and loss.",
        build=averaging_executors, report=report_averaging, extra=algorithms.AsyncTunables),
    AlgorithmSpec(
        "async-push-sum", "Asynchronous robust push-sum (running sums): averages over a "
        "directed graph under any delay, loss and wake order.",
        build=averaging_executors, report=report_averaging, extra=algorithms.AsyncTunables),
    AlgorithmSpec(
        "ad-psgd", "AD-PSGD: asynchronous SGD; each wake, a gradient step and a pairwise "
        "gossip average with a random neighbour.", build=async_learning_executors,
        report=report_async_learning, learning=True, extra=algorithms.AsyncTunables),
    AlgorithmSpec(
        "async-gradient-push", "Asynchronous robust gradient-push, for directed graphs: "
        "x <- x - a grad f_i(x / w), then push shares as running sums.",
        build=async_learning_executors, report=report_async_learning, learning=True,
        extra=algorithms.AsyncTunables),
    AlgorithmSpec(
        "fedavg", "Federated averaging (NVFlare's ScatterAndGather): each round, task "
        "\"train\" to every site, then the average of the results weighted by their "
        "NUM_STEPS_CURRENT_ROUND.",
        build=fedavg_executors, agents=partial(fedavg_executors, agents=True),
        report=lambda result, job, actors, out: report_fedavg(
            result, job, actors[CONTROLLER_NAME], out),
        controller=fedavg_controller, extra=algorithms.FedAvgTunables,
        job_defaults=FEDAVG_DEFAULTS),
)}
"""Every algorithm by its command and job-file name."""

LEARNING = tuple(name for name, spec in ALGORITHMS.items() if spec.learning)
"""The learning algorithms' names (the keys of ``peerflow.algorithms.LEARNING_EXECUTORS``)."""


def build_controller(job: Job) -> DistOptController | None:
    """The job's own controller if its algorithm is a workflow (else None: the default)."""
    spec = ALGORITHMS[job.algorithm]
    return None if spec.controller is None else spec.controller(job)


def build_executors(job: Job, *, agents: bool = False) -> dict[str, Any]:
    """Every node's executor for ``job``: agent-backed ones if ``agents`` and the
    algorithm has them (else the in-process ones)."""
    spec = ALGORITHMS[job.algorithm]
    return (spec.agents if agents and spec.agents else spec.build)(job)


def report_job(result: RunResult, job: Job, out: Path | None,
               controller: DistOptController | None = None) -> Table:
    """Write (``summary.json`` in ``out``) what the simulator would for this job, from
    executors built as the nodes built theirs and restored from their results (a
    workflow: from its ``controller``); the summary table."""
    spec = ALGORITHMS[job.algorithm]
    if spec.controller is not None:
        return spec.report(result, job, {CONTROLLER_NAME: controller}, out)
    executors = spec.build(job)
    for node, answer in result.results.items():  # all, or what an aborted run's nodes reached
        executors[node].load_result(answer)
    return spec.report(result, job, executors, out)


def parse_extra(algorithm: str, items: list[str]) -> dict[str, int | float]:
    """``["beta1=0.95", ...]`` (``--set``) as ``{"beta1": 0.95}``, keys checked.

    Raises:
        JobError: an item is not KEY=NUMBER, the algorithm does not read KEY, or
            NUMBER is not finite and >= 0.
    """
    parsed: dict[str, int | float] = {}
    for item in items:
        key, _, value = item.partition("=")
        try:  # an integer stays one, for counts (a float key converts it)
            parsed[key.strip()] = int(value) if value.strip().isdigit() else float(value)
        except ValueError:
            raise JobError(f"--set {item!r}: expected KEY=NUMBER, e.g. beta1=0.95") from None
        if not key.strip():
            raise JobError(f"--set {item!r}: the key is empty")
    return ALGORITHMS[algorithm].check_extra(parsed, "--set")
