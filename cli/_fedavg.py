"""``peerflow simulate fedavg``: federated averaging on this host, sites in or out of process.

Sites are ``site-1`` ... ``site-N``. Without ``--agent-command`` each site trains
its part of the built-in problem in this process (``--processes``: in a ``peerflow
node`` process of its own); with it, each site relays task
"train" to one process of the command (``{site}`` and ``{agent_id}`` in it become
the site's name and its agent id), as NVFlare's TaskExchanger does; with
``--agent-tls KITS``, over mutual TLS with each site's startup kit.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import msgspec
import typer

import peerflow
from peerflow.actors import (
    DEFAULT_SYNC_TIMEOUT,
    ConfigError,
    Network,
    Node,
    RunResult,
    SyncAlgorithmExecutor,
)
from peerflow.algorithms import ScatterAndGather
from peerflow.jobs import (
    ALGORITHMS,
    Job,
    RunSetup,
    fedavg_controller,
    fedavg_executors,
    report_fedavg,
    use_run_setup,
)

from . import _options as opt
from . import _render as render
from ._agents import AgentCommand, AgentTlsKits, check_agent_tls, simulate_with_agents
from ._errors import CliInputError
from ._interrupt import Interrupted, run_async
from ._launch import node_options, run_processes
from ._metrics import controller_args, metrics_options, write_metrics
from ._running import show_result

_SPEC = ALGORITHMS["fedavg"]
_EXTRA = _SPEC.extra_defaults()
_DEFAULTS = dict(_SPEC.job_defaults or {})

Sites = Annotated[int, typer.Option("--nodes", "-n", min=1,
                                    help="Number of sites: site-1 ... site-N.")]
Rounds = Annotated[int, typer.Option("--rounds", "-r", min=0, help="num_rounds: rounds to run.")]
MinClients = Annotated[int, typer.Option(
    "--min-clients", min=1, help="min_clients: results a round needs before it may close.")]
WaitTime = Annotated[float, typer.Option(
    "--wait-time-after-min-received", min=0.0,
    help="Seconds a round waits for the other sites once --min-clients results came.")]
InitialWeights = Annotated[Path | None, typer.Option(
    "--initial-weights", help="The initial global model: .npz, or JSON {name: nested list} "
    "(float32). Default: the --problem's model (two-moons: an MLP 2-32-32-2).")]
LocalEpochs = Annotated[int, typer.Option(
    "--local-epochs", min=1, help="In-process sites: epochs over their data per round.")]
TrainTimeout = Annotated[float, typer.Option(
    "--train-timeout", min=0.0, help="Seconds a site may take per round (0: no bound).")]
LocalStepsize = Annotated[float | None, typer.Option(
    "--stepsize", "-a", min=0.0,
    help=f"In-process sites: the SGD step size (default {_DEFAULTS['stepsize']:g}).")]


def simulate_fedavg(nodes: Sites = 3, rounds: Rounds = int(_DEFAULTS["iterations"]),
                    min_clients: MinClients = int(_EXTRA["min_clients"]),
                    wait_time_after_min_received: WaitTime =
                    _EXTRA["wait_time_after_min_received"],
                    initial_weights: InitialWeights = None,
                    agent_command: AgentCommand = None, agent_tls: AgentTlsKits = None,
                    problem: opt.ProblemName = "two-moons", seed: opt.Seed = 0,
                    stepsize: LocalStepsize = None,
                    local_epochs: LocalEpochs = int(_EXTRA["local_epochs"]),
                    train_timeout: TrainTimeout = _EXTRA["train_timeout"],
                    transport: opt.TransportName = "memory", out: opt.Out = None,
                    torch_threads: opt.TorchThreads = 1, processes: opt.Processes = False,
                    force: opt.Force = False, tensorboard: opt.Tensorboard = None,
                    metrics_format: opt.MetricsFormat = "jsonl",
                    node_metrics: opt.NodeMetrics = None) -> None:
    """Federated averaging (its help is the registry's)."""
    job = _job(nodes, rounds, seed, problem, stepsize, torch_threads, initial_weights,
               {"min_clients": min_clients, "train_timeout": train_timeout,
                "wait_time_after_min_received": wait_time_after_min_received,
                "local_epochs": local_epochs})
    check_agent_tls(agent_tls, agent_command, *job.network.node_ids)
    controller = fedavg_controller(job)
    executors = fedavg_executors(job, agents=bool(agent_command),
                                 initial=controller.global_weights)
    out_dir = render.claim_out(out, force)
    metrics = metrics_options(out_dir, tensorboard, metrics_format, node_metrics)
    use_run_setup(RunSetup(seed, {"name": "sites", "nodes": nodes}, transport))
    if processes:  # the nodes read the job file elsewhere: the weights' path is absolute
        job = msgspec.structs.replace(job, initial_weights=None if initial_weights is None
                                      else str(initial_weights.resolve()))
        raise typer.Exit(run_processes(job, transport, out_dir,
                                       node_options(agent_command, agent_tls),
                                       controller_args(metrics)))
    result = _run(controller, executors, agent_command, agent_tls, transport)
    write_metrics(out_dir, metrics, executors, result, controller=controller)
    show_result(result, controller.config, out_dir, report_fedavg(result, job, controller, out_dir),
                where=("site", "round"))


def _job(nodes: int, rounds: int, seed: int, problem: str, stepsize: float | None,
         torch_threads: int, initial_weights: Path | None, extra: dict[str, float]) -> Job:
    """The fedavg job of sites ``site-1`` ... ``site-N``."""
    return Job("fedavg", rounds, seed, DEFAULT_SYNC_TIMEOUT,
               Network(tuple(Node(f"site-{i}") for i in range(1, nodes + 1))), problem=problem,
               stepsize=_DEFAULTS["stepsize"] if stepsize is None else stepsize,
               extra=_SPEC.check_extra(extra, "options"), torch_threads=torch_threads,
               allow_disconnected=True,
               initial_weights=None if initial_weights is None else str(initial_weights))


def _run(controller: ScatterAndGather, executors: Mapping[str, SyncAlgorithmExecutor],
         command: str | None, tls: Path | None, transport: str) -> RunResult:
    """Run the job, its sites' agent processes too if ``command`` (an interrupted run:
    its result, at the rounds done)."""
    options = {"transport": transport, "controller": controller, "allow_disconnected": True}
    started = time.perf_counter()
    try:
        return (simulate_with_agents(controller.config, executors, command, tls=tls, **options)
                if command else
                run_async(lambda: peerflow.run(controller.config, executors, **options)))
    except ConfigError as exc:
        raise CliInputError(str(exc)) from exc
    except Interrupted as exc:
        return RunResult("interrupted", str(exc), iteration=len(controller.rounds),
                         timings={"total": time.perf_counter() - started})
