"""Job files for multi-process runs, and the algorithms a job may name.

``JOB.toml``::

    algorithm = "gt"       # consensus, push-sum, dgd, gt, gtadam, extra,
                           # subgradient-push or push-diging
    iterations = 60        # (learning: the problem's if not given)
    seed = 0               # data, models, initial values (and a random topology)
    sync_timeout = 10.0
    problem = "two-moons"  # learning only: two-moons, least-squares or blobs
    stepsize = 0.01        # learning only (the problem's if not given)
    torch_threads = 1      # learning only: torch threads per process

    [extra]                # learning only: the algorithm's parameters
    beta1 = 0.9            # (gtadam: beta1, beta2, epsilon; subgradient-push: power)

    [network]              # a built-in topology ...
    topology = "random"
    nodes = 6
    # file = "network.json"   ... or an NVFlare network JSON, relative to this file
    # allow_disconnected = true   run a network that is not (strongly) connected

The controller sends the job's spec (the same fields, the network inlined) to
every node, which builds its executor from it with the simulator's builders, so
a multi-process run starts from exactly the simulator's initial state. The
controller builds the same executors, restores each from its node's result
(``load_result``) and writes the simulator's report.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any

from peerflow import algorithms
from peerflow.actors import Config, ConfigError, Network, RunResult

from . import _learning as learning
from ._consensus import consensus_executors, report_consensus
from ._errors import CliInputError, parse_file
from ._network import build_network
from ._options import MAX_SYNC_TIMEOUT

_KEYS = {"algorithm", "iterations", "seed", "sync_timeout", "network"}
_LEARNING_KEYS = _KEYS | {"problem", "stepsize", "torch_threads", "extra"}
_NETWORK_KEYS = {"topology", "nodes", "seed", "file", "allow_disconnected"}


@dataclass(frozen=True, slots=True)
class Job:
    """What a multi-process run does: an algorithm, its parameters and the network.

    ``problem``, ``stepsize``, ``extra`` and ``torch_threads`` are for learning
    algorithms (``problem`` is None for the others).
    """

    algorithm: str
    iterations: int
    seed: int
    sync_timeout: float
    network: Network
    problem: str | None = None
    stepsize: float | None = None
    extra: dict[str, float] = field(default_factory=dict)
    torch_threads: int = 1
    allow_disconnected: bool = False

    @property
    def config(self) -> Config:
        """The run's config: what ``peerflow simulate`` would run."""
        stepsize = {} if self.stepsize is None else {"stepsize": self.stepsize}
        return Config(self.network, {"iterations": self.iterations, **stepsize, **self.extra})

    def spec(self) -> dict[str, Any]:
        """The msgpack-able form the controller hands to every node."""
        return {f.name: getattr(self, f.name) for f in fields(self)} | {
            "network": self.network.to_dict()}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Job:
        """Rebuild a job from ``spec()``.

        Raises:
            ConfigError: the spec is malformed or names an unknown algorithm.
        """
        try:
            job = cls(**{**spec, "network": Network.from_dict(spec["network"]),
                         "extra": dict(spec["extra"])})
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"malformed job spec: {exc!r}") from exc
        if not isinstance(job.algorithm, str) or job.algorithm not in ALGORITHMS:
            raise ConfigError(f"the job's algorithm {job.algorithm!r} is unknown here")
        return job

    def to_toml(self, network_file: Path) -> str:
        """A job file naming ``network_file`` (written by the caller) as its network."""
        network_file.write_text(json.dumps(self.network.to_dict()))
        keys = _KEYS if self.problem is None else _LEARNING_KEYS
        lines = [f"{key} = {json.dumps(getattr(self, key))}"
                 for key in sorted(keys - {"network", "extra"})]
        if self.problem is not None:
            lines += ["", "[extra]", *(f"{k} = {v!r}" for k, v in self.extra.items())]
        allow = ["allow_disconnected = true"] if self.allow_disconnected else []
        return "\n".join([*lines, "", "[network]", f"file = {json.dumps(str(network_file))}",
                          *allow, ""])


def load_job(path: Path) -> Job:
    """Read and check a job file.

    Raises:
        CliInputError: the file is missing, not TOML, or has a wrong or unknown field.
    """
    data = parse_file(path, "job file", tomllib.loads, tomllib.TOMLDecodeError, "TOML")
    return _job(data, path)


def _job(data: dict[str, Any], path: Path) -> Job:
    where = f"job file {str(path)!r}"
    algorithm = data.get("algorithm")
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise CliInputError(f"{where}: algorithm must be one of {sorted(ALGORITHMS)}, "
                            f"got {algorithm!r}")
    _no_unknown(data, _LEARNING_KEYS if algorithm in learning.HELP else _KEYS, where)
    seed = _number(data, "seed", int, 0, where, minimum=0)
    sync_timeout = float(_number(data, "sync_timeout", (int, float), 10.0, where,
                                 minimum=0.001, maximum=MAX_SYNC_TIMEOUT))
    network, allow_disconnected = _network(data.get("network", {}), path, seed, where, algorithm)
    specific = (_learning_fields(data, algorithm, network, seed, where)
                if algorithm in learning.HELP
                else {"iterations": _number(data, "iterations", int, 50, where, minimum=0)})
    return Job(algorithm=algorithm, seed=seed, sync_timeout=sync_timeout, network=network,
               allow_disconnected=allow_disconnected, **specific)


def _network(table: Any, path: Path, seed: int, where: str,
             algorithm: str) -> tuple[Network, bool]:
    if not isinstance(table, dict):
        raise CliInputError(f"{where}: [network] must be a table")
    _no_unknown(table, _NETWORK_KEYS, f"{where} [network]")
    file = table.get("file")
    allow = table.get("allow_disconnected", False)
    if not isinstance(allow, bool):
        raise CliInputError(f"{where} [network]: allow_disconnected must be true or false, "
                            f"got {allow!r}")
    nodes = _number(table, "nodes", int, 6, where)
    seed = _number(table, "seed", int, seed, where)
    try:
        network = build_network(str(table.get("topology", "random")), nodes, seed,
                                None if file is None else path.parent / str(file),
                                algorithm=algorithm, allow_disconnected=allow)
    except CliInputError as exc:
        raise CliInputError(f"{where}: {exc}") from None
    return network, allow


def _learning_fields(data: dict[str, Any], algorithm: str, network: Network, seed: int,
                     where: str) -> dict[str, Any]:
    """iterations, problem, stepsize, extra and torch_threads; defaults from the problem."""
    problem = data.get("problem", "two-moons")
    try:
        task = learning.build_problem(str(problem), len(network.nodes), seed)
    except CliInputError as exc:
        raise CliInputError(f"{where}: {exc}") from None
    extra = data.get("extra", {})
    if not isinstance(extra, dict):
        raise CliInputError(f"{where}: [extra] must be a table")
    known = set(algorithms.LEARNING_EXECUTORS[algorithm].extra_parameters)
    _no_unknown(extra, known, f"{where} [extra] of {algorithm}")
    return {"iterations": _number(data, "iterations", int, task.iterations, where, minimum=0),
            "problem": task.name,
            "stepsize": float(_number(data, "stepsize", (int, float), task.stepsize, where,
                                      minimum=0)),
            "extra": {key: float(_number(extra, key, (int, float), 0, f"{where} [extra]",
                                         minimum=0)) for key in extra},
            "torch_threads": _number(data, "torch_threads", int, 1, where, minimum=1)}


def _no_unknown(data: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise CliInputError(f"{where}: unknown fields {unknown}; expected {sorted(known)}")


def _number(data: Mapping[str, Any], key: str, kind: Any, default: Any, where: str, *,
            minimum: float | None = None, maximum: float | None = None) -> Any:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, kind) or value != value:
        raise CliInputError(f"{where}: {key} must be a number, got {value!r}")
    if minimum is not None and value < minimum:
        raise CliInputError(f"{where}: {key} must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise CliInputError(f"{where}: {key} must be <= {maximum}, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Algorithm:
    """How to build a job's executors (in-process, or agent-backed), and report a run."""

    build: Callable[[Job], dict[str, Any]]
    report: Callable[[RunResult, Job, dict[str, Any], Path | None], None]
    agents: Callable[[Job], dict[str, Any]] | None = None


def _learning_executors(job: Job, *, agents: bool = False) -> dict[str, Any]:
    task = learning.build_problem(str(job.problem), len(job.network.nodes), job.seed)
    return learning.learning_executors(job.algorithm, task, job.network, job.sync_timeout,
                                       agents=agents, torch_threads=job.torch_threads)


def _report_learning(result: RunResult, job: Job, executors: dict[str, Any],
                     out: Path | None) -> None:
    task = learning.build_problem(str(job.problem), len(job.network.nodes), job.seed)
    learning.report_learning(job.algorithm, task, result, job.config, executors, out)


ALGORITHMS: dict[str, Algorithm] = {
    "consensus": Algorithm(
        build=lambda job: dict(consensus_executors(job.network, job.seed, job.sync_timeout)),
        report=lambda result, job, executors, out: report_consensus(
            result, job.config, executors, job.iterations, out)),
    "push-sum": Algorithm(
        build=lambda job: dict(learning.push_sum_executors(job.network, job.seed,
                                                           job.sync_timeout)),
        report=lambda result, job, executors, out: learning.report_push_sum(
            result, job.config, executors, out)),
    **{name: Algorithm(build=_learning_executors, report=_report_learning,
                       agents=partial(_learning_executors, agents=True))
       for name in learning.HELP},
}


def build_executors(job: Job, *, agents: bool = False) -> dict[str, Any]:
    """Every node's executor for ``job``: agent-backed ones if ``agents`` and the
    algorithm has them (else the in-process ones)."""
    algorithm = ALGORITHMS[job.algorithm]
    return (algorithm.agents if agents and algorithm.agents else algorithm.build)(job)


def report_job(result: RunResult, job: Job, out: Path | None) -> None:
    """Print and write (``summary.json`` in ``out``) what the simulator would for this job,
    from executors built as the nodes built theirs and restored from their results."""
    algorithm = ALGORITHMS[job.algorithm]
    executors = algorithm.build(job)
    if result.ok:
        for node, executor in executors.items():
            executor.load_result(result.results[node])
    algorithm.report(result, job, executors, out)
