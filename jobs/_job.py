"""A job: what a run does (algorithm, network, problem, settings, extra); its file.

``JOB.toml``::

    algorithm = "gt"       # consensus, push-sum, dgd, gt, gtadam, extra,
                           # subgradient-push, push-diging or fedavg
    iterations = 60        # (learning: the problem's if not given; fedavg: num_rounds, 5)
    seed = 0               # data, models, initial values (and a random topology)
    sync_timeout = 10.0
    problem = "two-moons"  # learning only: two-moons, least-squares or blobs
    stepsize = 0.01        # learning only (the problem's if not given; fedavg: 0.1)
    torch_threads = 1      # learning only: torch threads per process
    initial_weights = "w.npz"  # fedavg only: the initial global model (.npz, or JSON
                           # {name: nested list}), relative to this file

    [extra]                # learning only: the algorithm's parameters
    beta1 = 0.9            # (gtadam: beta1, beta2, epsilon; subgradient-push: power;
                           # fedavg: min_clients, wait_time_after_min_received,
                           # train_timeout, local_epochs; its sites: the network's nodes)

    [network]              # a built-in topology ...
    topology = "random"
    nodes = 6
    # file = "network.json"   ... or an NVFlare network JSON, relative to this file
    # allow_disconnected = true   run a network that is not (strongly) connected

The controller sends the job's spec (the same fields, the network inlined) to
every node, which builds its executor from it with the registry's builders, so
a multi-process run starts from exactly the simulator's initial state. The
controller builds the same executors, restores each from its node's result
(``load_result``) and writes the simulator's report.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from peerflow.actors import DEFAULT_SYNC_TIMEOUT, Config, ConfigError, Network

from . import _learning as learning
from ._errors import JobError, no_unknown, parse_file
from ._network import build_network
from ._registry import ALGORITHMS

MAX_SYNC_TIMEOUT = 86_400.0
"""The longest sync timeout a job may ask for (a day): longer is a typo."""

_KEYS = {"algorithm", "iterations", "seed", "sync_timeout", "network"}
_LEARNING_KEYS = _KEYS | {"problem", "stepsize", "torch_threads", "extra"}
_WORKFLOW_KEYS = _LEARNING_KEYS | {"initial_weights"}
_NETWORK_KEYS = {"topology", "nodes", "seed", "file", "allow_disconnected"}


class Job(msgspec.Struct, frozen=True):
    """What a run does: an algorithm, its parameters and the network.

    ``problem``, ``stepsize``, ``extra`` and ``torch_threads`` are for learning
    algorithms and workflows (``problem`` is None for the others); ``initial_weights``
    (an absolute path) for a workflow.
    """

    algorithm: str
    iterations: int
    seed: int
    sync_timeout: float
    network: Network
    problem: str | None = None
    stepsize: float | None = None
    extra: dict[str, float] = msgspec.field(default_factory=dict)
    torch_threads: int = 1
    allow_disconnected: bool = False
    initial_weights: str | None = None

    @property
    def config(self) -> Config:
        """The run's config: what ``peerflow simulate`` would run."""
        stepsize = {} if self.stepsize is None else {"stepsize": self.stepsize}
        return Config(self.network, {"iterations": self.iterations, **stepsize, **self.extra})

    def spec(self) -> dict[str, Any]:
        """The msgpack-able form the controller hands to every node."""
        return msgspec.structs.asdict(self) | {"network": self.network.to_dict()}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Job:
        """Rebuild a job from ``spec()``.

        Raises:
            ConfigError: the spec is malformed (an unknown field is named with those
                expected) or names an unknown algorithm.
        """
        try:
            no_unknown(spec, cls.__struct_fields__, "job spec")
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
        if self.initial_weights is not None:
            lines.append(f"initial_weights = {json.dumps(self.initial_weights)}")
        if self.problem is not None:
            lines += ["", "[extra]", *(f"{k} = {v!r}" for k, v in self.extra.items())]
        allow = ["allow_disconnected = true"] if self.allow_disconnected else []
        return "\n".join([*lines, "", "[network]", f"file = {json.dumps(str(network_file))}",
                          *allow, ""])


def load_job(path: Path) -> Job:
    """Read and check a job file.

    Raises:
        JobError: the file is missing, not TOML, or has a wrong or unknown field.
    """
    data = parse_file(path, "job file", tomllib.loads, tomllib.TOMLDecodeError, "TOML")
    return _job(data, path)


def _job(data: dict[str, Any], path: Path) -> Job:
    where = f"job file {str(path)!r}"
    algorithm = data.get("algorithm")
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise JobError(f"{where}: algorithm must be one of {sorted(ALGORITHMS)}, "
                       f"got {algorithm!r}")
    spec = ALGORITHMS[algorithm]
    no_unknown(data, _WORKFLOW_KEYS if spec.controller else
               _LEARNING_KEYS if spec.learning else _KEYS, where)
    seed = _number(data, "seed", int, 0, where, minimum=0)
    sync_timeout = float(_number(data, "sync_timeout", (int, float), DEFAULT_SYNC_TIMEOUT, where,
                                 minimum=0.001, maximum=MAX_SYNC_TIMEOUT))
    network, allow_disconnected = _network(data.get("network", {}), path, seed, where, algorithm)
    specific = (_learning_fields(data, algorithm, network, seed, where)
                if spec.trains
                else {"iterations": _number(data, "iterations", int, 50, where, minimum=0)})
    if "initial_weights" in data:
        specific["initial_weights"] = str(path.parent / str(data["initial_weights"]))
    return Job(algorithm=algorithm, seed=seed, sync_timeout=sync_timeout, network=network,
               allow_disconnected=allow_disconnected, **specific)


def _network(table: Any, path: Path, seed: int, where: str,
             algorithm: str) -> tuple[Network, bool]:
    if not isinstance(table, dict):
        raise JobError(f"{where}: [network] must be a table")
    no_unknown(table, _NETWORK_KEYS, f"{where} [network]")
    file = table.get("file")
    allow = table.get("allow_disconnected", False)
    if not isinstance(allow, bool):
        raise JobError(f"{where} [network]: allow_disconnected must be true or false, "
                       f"got {allow!r}")
    nodes = _number(table, "nodes", int, 6, where)
    seed = _number(table, "seed", int, seed, where)
    try:
        network = build_network(str(table.get("topology", "random")), nodes, seed,
                                None if file is None else path.parent / str(file),
                                algorithm=algorithm, allow_disconnected=allow)
    except JobError as exc:
        raise JobError(f"{where}: {exc}") from None
    return network, allow


def _learning_fields(data: dict[str, Any], algorithm: str, network: Network, seed: int,
                     where: str) -> dict[str, Any]:
    """iterations, problem, stepsize, extra and torch_threads; defaults from the problem."""
    problem = data.get("problem", "two-moons")
    try:
        task = learning.build_problem(str(problem), len(network.nodes), seed)
    except JobError as exc:
        raise JobError(f"{where}: {exc}") from None
    extra = data.get("extra", {})
    if not isinstance(extra, dict):
        raise JobError(f"{where}: [extra] must be a table")
    ALGORITHMS[algorithm].check_extra(extra, f"{where} [extra]")
    defaults = {"iterations": task.iterations, "stepsize": task.stepsize,
                **(ALGORITHMS[algorithm].job_defaults or {})}
    return {"iterations": _number(data, "iterations", int, defaults["iterations"], where,
                                  minimum=0),
            "problem": task.name,
            "stepsize": float(_number(data, "stepsize", (int, float), defaults["stepsize"],
                                      where, minimum=0)),
            "extra": {key: float(_number(extra, key, (int, float), 0, f"{where} [extra]",
                                         minimum=0)) for key in extra},
            "torch_threads": _number(data, "torch_threads", int, 1, where, minimum=1)}


def _number(data: Mapping[str, Any], key: str, kind: Any, default: Any, where: str, *,
            minimum: float | None = None, maximum: float | None = None) -> Any:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, kind) or value != value:
        raise JobError(f"{where}: {key} must be a number, got {value!r}")
    if minimum is not None and value < minimum:
        raise JobError(f"{where}: {key} must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise JobError(f"{where}: {key} must be <= {maximum}, got {value!r}")
    return value
