"""A job: what a run does (algorithm, network, problem, settings, extra); its file.

``JOB.toml``::

    algorithm = "gt"       # consensus, push-sum, dgd, gt, gtadam, extra,
                           # subgradient-push, push-diging, fedavg; asynchronous: gossip,
                           # async-push-sum, ad-psgd, async-gradient-push
    iterations = 60        # (consensus, push-sum: 50; learning: the problem's if not given;
                           # fedavg: num_rounds, 5)
    seed = 0               # data, models, initial values (and a random topology)
    sync_timeout = 10.0
    problem = "two-moons"  # learning only: two-moons, least-squares or blobs
    stepsize = 0.01        # learning only (the problem's if not given; fedavg: 0.1)
    torch_threads = 1      # learning only: torch threads per process
    initial_weights = "w.npz"  # fedavg only: the initial global model (.npz, or JSON
                           # {name: nested list}), relative to this file

    [extra]                # learning only: the algorithm's tunables (its registry entry's
    beta1 = 0.9            # ``tunables()``: gtadam's beta1, beta2, epsilon; subgradient-push's
                           # power; fedavg's min_clients, wait_time_after_min_received,
                           # train_timeout, local_epochs; the asynchronous ones' max_wait,
                           # scheduled, max_delay, drop, also for gossip and
                           # async-push-sum); finite numbers >= 0
                           # (fedavg's min_clients and local_epochs: integers >= 1)

    [network]              # a built-in topology ...
    topology = "random"
    nodes = 6
    # file = "network.json"   ... or an NVFlare network JSON, relative to this file
    # allow_disconnected = true   run a network that is not (strongly) connected

msgspec checks a file against ``JobFile`` (``LearningJobFile``, ``WorkflowJobFile``):
types, bounds
and keys, an unknown one refused naming those allowed; ``Job`` is what the file
resolves to (the network built, absent keys defaulted), written back by
``Job.to_toml`` (tomli-w).

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
from typing import Annotated, Any

import msgspec
import tomli_w
from msgspec import UNSET, UnsetType

from peerflow.actors import DEFAULT_SYNC_TIMEOUT, Config, ConfigError, Network, network_from_data
from peerflow.algorithms import NonNegative

from . import _learning as learning
from ._errors import JobError, invalid, parse_file
from ._network import build_network
from ._registry import ALGORITHMS
from ._setup import topology_of

MAX_SYNC_TIMEOUT = 86_400.0
"""The longest sync timeout a job may ask for (a day): longer is a typo."""

CONSENSUS_ITERATIONS = 50
"""A job file's iterations for consensus and push-sum, if it gives none."""

Count = Annotated[int, msgspec.Meta(ge=0)]
SyncTimeout = Annotated[float, msgspec.Meta(ge=0.001, le=MAX_SYNC_TIMEOUT)]
Positive = Annotated[int, msgspec.Meta(ge=1)]


class Job(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a run does: an algorithm, its parameters and the network.

    ``problem``, ``stepsize``, ``extra`` (the keys given, checked by the registry's
    ``check_extra``) and ``torch_threads`` are for learning algorithms and workflows
    (``problem`` is None for the others); ``initial_weights`` (an absolute path) for
    a workflow. ``topology`` names the built-in topology the network was made with
    (``topology_of``; empty for a network file), for the summary.
    """

    algorithm: str
    iterations: Count
    seed: Count
    sync_timeout: SyncTimeout
    network: Network
    problem: str | None = None
    stepsize: NonNegative | None = None
    extra: dict[str, int | float | str] = {}
    torch_threads: Positive = 1
    allow_disconnected: bool = False
    initial_weights: str | None = None
    topology: dict[str, Any] = {}

    @classmethod
    def learning(cls, algorithm: str, network: Network, problem: str, seed: int,
                 sync_timeout: float, *, iterations: int | None = None,
                 stepsize: float | None = None, extra: Mapping[str, float] | None = None,
                 torch_threads: int = 1, allow_disconnected: bool = False,
                 initial_weights: str | None = None,
                 topology: Mapping[str, Any] | None = None) -> Job:
        """A learning job (or a workflow's): iterations and step size the algorithm's
        ``job_defaults``, else the problem's, unless given; ``extra`` checked by the
        registry (``check_extra``).

        Raises:
            JobError: an unknown problem, or an ``extra`` key the algorithm does not read.
        """
        spec = ALGORITHMS[algorithm]
        task = learning.build_problem(problem, len(network.nodes), seed)
        defaults = {"iterations": task.iterations, "stepsize": task.stepsize,
                    **(spec.job_defaults or {})}
        return cls(algorithm, defaults["iterations"] if iterations is None else iterations,
                   seed, sync_timeout, network, problem=task.name,
                   stepsize=defaults["stepsize"] if stepsize is None else stepsize,
                   extra=spec.check_extra(extra or {}, "[extra]"), torch_threads=torch_threads,
                   allow_disconnected=allow_disconnected, initial_weights=initial_weights,
                   topology=dict(topology or {}))

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
        """Rebuild a job from ``spec()``, checked as a job file is.

        Raises:
            ConfigError: the spec is malformed (an unknown field is named with those
                expected) or names an unknown algorithm.
        """
        algorithm = spec.get("algorithm")
        if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
            raise ConfigError(f"the job's algorithm {algorithm!r} is unknown here")
        try:
            network = network_from_data(spec.get("network"))
            # msgspec takes a Network as it is, not a subclass (a Schedule): set it after
            job = msgspec.convert({**spec, "network": Network()}, cls)
            job = msgspec.structs.replace(job, network=network)
            ALGORITHMS[algorithm].check_extra(job.extra, "extra")
        except msgspec.ValidationError as exc:
            raise ConfigError(str(invalid(exc, cls, spec, "malformed job spec"))) from None
        except (ConfigError, JobError) as exc:
            raise ConfigError(f"malformed job spec: {exc}") from None
        return job

    def to_toml(self, network_file: Path) -> str:
        """A job file naming ``network_file`` (written here) as its network (and the
        built-in topology it was made with, if any, which the file then holds).

        It reads back (``load_job``) to an equal job.
        """
        network_file.write_text(json.dumps(self.network.to_dict()))
        schema = _schema(self.algorithm)
        table: dict[str, Any] = {"file": str(network_file)}
        if self.topology:
            table |= {"topology": self.topology["name"], "seed": self.topology["seed"]}
        if self.allow_disconnected:
            table["allow_disconnected"] = True
        return tomli_w.dumps({key: getattr(self, key) for key in schema.__struct_fields__
                              if getattr(self, key) is not None} | {"network": table})


class NetworkTable(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A job file's ``[network]``: a built-in topology, or a network JSON file."""

    topology: str | UnsetType = UNSET
    """The built-in topology ("random" if not given); with ``file``: the one the file holds."""
    nodes: Positive = 6
    seed: Count | UnsetType = UNSET
    file: str | UnsetType = UNSET
    allow_disconnected: bool = False


class JobFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a job file holds (its keys, types and bounds); ``resolve`` makes the Job."""

    algorithm: str
    iterations: Count | UnsetType = UNSET
    seed: Count = 0
    sync_timeout: SyncTimeout = DEFAULT_SYNC_TIMEOUT
    network: NetworkTable = NetworkTable()


class TunedJobFile(JobFile):
    """The job file of an algorithm with tunables that trains nothing (gossip)."""

    extra: dict[str, Any] = {}


class LearningJobFile(JobFile):
    """A learning algorithm's job file: a problem to train and how."""

    problem: str = "two-moons"
    stepsize: NonNegative | UnsetType = UNSET
    torch_threads: Positive = 1
    extra: dict[str, Any] = {}


class WorkflowJobFile(LearningJobFile):
    """A workflow's job file (fedavg): a learning one with the initial global model."""

    initial_weights: str | UnsetType = UNSET


def load_job(path: Path) -> Job:
    """Read and check a job file.

    Raises:
        JobError: the file is missing, not TOML, or has a wrong or unknown key (the
            message names the key, and for an unknown one those allowed).
    """
    data = parse_file(path, "job file", tomllib.loads, tomllib.TOMLDecodeError, "TOML")
    where = f"job file {str(path)!r}"
    algorithm = data.get("algorithm")
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise JobError(f"{where}: algorithm must be one of {sorted(ALGORITHMS)}, "
                       f"got {algorithm!r}")
    schema = _schema(algorithm)
    try:
        file = msgspec.convert(data, schema)
    except msgspec.ValidationError as exc:
        raise invalid(exc, schema, data, where) from None
    try:
        return _resolve(file, path.parent)
    except JobError as exc:
        raise JobError(f"{where}: {exc}") from None


def _schema(algorithm: str) -> type[JobFile]:
    """What a job file of ``algorithm`` may hold."""
    spec = ALGORITHMS[algorithm]
    return (WorkflowJobFile if spec.controller else LearningJobFile if spec.trains
            else TunedJobFile if spec.extra else JobFile)


def _resolve(file: JobFile, folder: Path) -> Job:
    """The job a checked file describes: its network built, absent keys defaulted."""
    table = file.network
    name = "random" if table.topology is UNSET else table.topology
    seed = file.seed if table.seed is UNSET else table.seed
    path = None if table.file is UNSET else folder / table.file
    network = build_network(name, table.nodes, seed, path, algorithm=file.algorithm,
                            allow_disconnected=table.allow_disconnected)
    topology = ({} if path is not None and table.topology is UNSET
                else topology_of(name, len(network.nodes), seed))
    iterations = None if file.iterations is UNSET else file.iterations
    if isinstance(file, LearningJobFile):
        weights = getattr(file, "initial_weights", UNSET)
        return Job.learning(file.algorithm, network, file.problem, file.seed, file.sync_timeout,
                            iterations=iterations, extra=file.extra,
                            stepsize=None if file.stepsize is UNSET else file.stepsize,
                            torch_threads=file.torch_threads,
                            allow_disconnected=table.allow_disconnected,
                            initial_weights=None if weights is UNSET else str(folder / weights),
                            topology=topology)
    extra = file.extra if isinstance(file, TunedJobFile) else {}
    return Job(file.algorithm, CONSENSUS_ITERATIONS if iterations is None else iterations,
               file.seed, file.sync_timeout, network,
               extra=ALGORITHMS[file.algorithm].check_extra(extra, "[extra]"),
               allow_disconnected=table.allow_disconnected, topology=topology)
