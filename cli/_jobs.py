"""Job files for multi-process runs, and the algorithms a job may name.

``JOB.toml``::

    algorithm = "consensus"
    iterations = 50
    seed = 0               # initial values (and the random topology, unless [network] says)
    sync_timeout = 10.0

    [network]              # a built-in topology ...
    topology = "random"
    nodes = 6
    # file = "network.json"   ... or an NVFlare network JSON, relative to this file

The controller sends the job's spec (the same fields, the network inlined) to
every node, which builds its executor from it with the simulator's builders, so
a multi-process run starts from exactly the simulator's initial state.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peerflow.actors import Config, ConfigError, Network, RunResult, SyncAlgorithmExecutor

from ._consensus import consensus_executors, report_consensus
from ._errors import CliInputError, parse_file
from ._network import build_network

_KEYS = {"algorithm", "iterations", "seed", "sync_timeout", "network"}
_NETWORK_KEYS = {"topology", "nodes", "seed", "file"}


@dataclass(frozen=True, slots=True)
class Job:
    """What a multi-process run does: an algorithm, its parameters and the network."""

    algorithm: str
    iterations: int
    seed: int
    sync_timeout: float
    network: Network

    @property
    def config(self) -> Config:
        return Config(self.network, {"iterations": self.iterations})

    def spec(self) -> dict[str, Any]:
        """The msgpack-able form the controller hands to every node."""
        return {"algorithm": self.algorithm, "iterations": self.iterations, "seed": self.seed,
                "sync_timeout": self.sync_timeout, "network": self.network.to_dict()}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Job:
        """Rebuild a job from ``spec()``.

        Raises:
            ConfigError: the spec is malformed.
        """
        try:
            return cls(str(spec["algorithm"]), int(spec["iterations"]), int(spec["seed"]),
                       float(spec["sync_timeout"]), Network.from_dict(spec["network"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"malformed job spec: {exc!r}") from exc

    def to_toml(self, network_file: Path) -> str:
        """A job file naming ``network_file`` (written by the caller) as its network."""
        network_file.write_text(json.dumps(self.network.to_dict()))
        return (f'algorithm = "{self.algorithm}"\niterations = {self.iterations}\n'
                f"seed = {self.seed}\nsync_timeout = {self.sync_timeout!r}\n\n"
                f"[network]\nfile = {json.dumps(str(network_file))}\n")


def load_job(path: Path) -> Job:
    """Read and check a job file.

    Raises:
        CliInputError: the file is missing, not TOML, or has a wrong or unknown field.
    """
    data = parse_file(path, "job file", tomllib.loads, tomllib.TOMLDecodeError, "TOML")
    return _job(data, path)


def _job(data: dict[str, Any], path: Path) -> Job:
    where = f"job file {str(path)!r}"
    _no_unknown(data, _KEYS, where)
    algorithm = data.get("algorithm")
    if algorithm not in ALGORITHMS:
        raise CliInputError(f"{where}: algorithm must be one of {sorted(ALGORITHMS)}, "
                            f"got {algorithm!r}")
    iterations = _number(data, "iterations", int, 50, where)
    seed = _number(data, "seed", int, 0, where)
    sync_timeout = float(_number(data, "sync_timeout", (int, float), 10.0, where))
    if iterations < 0 or seed < 0 or sync_timeout <= 0:
        raise CliInputError(f"{where}: iterations and seed must be >= 0 and sync_timeout > 0")
    table = data.get("network", {})
    if not isinstance(table, dict):
        raise CliInputError(f"{where}: [network] must be a table")
    _no_unknown(table, _NETWORK_KEYS, f"{where} [network]")
    file = table.get("file")
    network = build_network(str(table.get("topology", "random")),
                            _number(table, "nodes", int, 6, where),
                            _number(table, "seed", int, seed, where),
                            None if file is None else path.parent / str(file))
    return Job(str(algorithm), iterations, seed, sync_timeout, network)


def _no_unknown(data: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise CliInputError(f"{where}: unknown fields {unknown}; expected {sorted(known)}")


def _number(data: Mapping[str, Any], key: str, kind: Any, default: Any, where: str) -> Any:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise CliInputError(f"{where}: {key} must be a number, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Algorithm:
    """How to build a job's executors, fill them from node results, and report them."""

    build: Callable[[Job], dict[str, SyncAlgorithmExecutor]]
    restore: Callable[[SyncAlgorithmExecutor, dict[str, Any]], None]
    report: Callable[[RunResult, Job, dict[str, Any], Path | None], None]


def _restore_consensus(executor: Any, result: dict[str, Any]) -> None:
    executor.value_history = list(result["value_history"])
    executor.current_value = executor.value_history[-1]


ALGORITHMS: dict[str, Algorithm] = {
    "consensus": Algorithm(
        build=lambda job: dict(consensus_executors(job.network, job.seed, job.sync_timeout)),
        restore=_restore_consensus,
        report=lambda result, job, executors, out: report_consensus(
            result, job.config, executors, job.iterations, out)),
}


def report_job(result: RunResult, job: Job, out: Path | None) -> None:
    """Print and write (``summary.json`` in ``out``) what the simulator would for this job."""
    algorithm = ALGORITHMS[job.algorithm]
    executors = algorithm.build(job)
    if result.ok:
        for node, executor in executors.items():
            algorithm.restore(executor, result.results[node])
    algorithm.report(result, job, executors, out)
