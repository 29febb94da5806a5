"""The ``peerflow`` command: thin typer commands that parse, build, run and render.

Nothing here imports torch: ``peerflow --help``, consensus and the distributed
commands start fast; the learning commands import it when they run.
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

import peerflow
from peerflow import jobs
from peerflow.actors import DEFAULT_SYNC_TIMEOUT, Config, Network
from peerflow.jobs import (
    ALGORITHMS,
    LEARNING,
    Job,
    JobError,
    build_network,
)

from . import _options as opt
from . import _render as render
from ._agents import AgentCommand, AgentTlsKits, check_agent_tls, simulate_with_agents
from ._bench import add_commands as add_bench_commands
from ._choco import simulate_choco_gossip
from ._distributed import add_commands as add_distributed_commands
from ._engine import Engine, on_actors
from ._errors import CliInputError
from ._fedavg import simulate_fedavg
from ._help import App, help_when_bare
from ._interrupt import EXIT_CODE, Interrupted, signals_interrupt
from ._launch import node_options, run_processes
from ._metrics import controller_args, metrics_options, write_metrics
from ._ray import RayAddress, Shards, bare_ray, check_ray_options
from ._results import add_commands as add_results_commands
from ._run_setup import built_in, describe_run
from ._running import run_elsewhere, run_here, run_in_process, show_result
from ._topology import add_commands as add_topology_commands

app = App(name="peerflow", help="Peer-to-peer distributed optimization on async actors.")
simulate_app = App(help="Run a whole job on this host and report it.")
simulate_app.callback()(help_when_bare)
app.add_typer(simulate_app, name="simulate")
add_distributed_commands(app)
add_bench_commands(app)
add_results_commands(app)
add_topology_commands(app)


def _show_version(show: bool) -> None:
    if show:
        typer.echo(f"peerflow {peerflow.__version__}")
        raise typer.Exit()


@app.callback()
def _root(ctx: typer.Context, version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True,
        help="Show the version and exit.")] = False) -> None:
    help_when_bare(ctx)


@simulate_app.command("consensus", help=ALGORITHMS["consensus"].help)
def simulate_consensus(nodes: opt.Nodes = 6, topology: opt.TopologyName = "random",
                       seed: opt.Seed = 0, iterations: opt.Iterations = 50,
                       network: opt.NetworkFile = None,
                       initial_values: opt.InitialValues = None,
                       transport: opt.TransportName = "memory",
                       out: opt.Out = None, sync_timeout: opt.SyncTimeout = DEFAULT_SYNC_TIMEOUT,
                       processes: opt.Processes = False,
                       allow_disconnected: opt.AllowDisconnected = False,
                       count_bytes: opt.CountBytes = False,
                       force: opt.Force = False, engine: Engine = "actors",
                       ray: RayAddress = None, shards: Shards = None,
                       tensorboard: opt.Tensorboard = None,
                       metrics_format: opt.MetricsFormat = "jsonl",
                       node_metrics: opt.NodeMetrics = None) -> None:
    """Consensus (its help is the registry's)."""
    check_ray_options(ray, shards, processes)
    graph = build_network(topology, nodes, seed, network, algorithm="consensus",
                          allow_disconnected=allow_disconnected)
    describe_run(seed, topology, graph, network, transport, processes)
    x0 = None if initial_values is None else jobs.load_initial_values(initial_values, graph)
    if (processes or ray is not None) and x0 is not None:
        raise CliInputError("--initial-values runs in one process; it does not combine with "
                            "--processes or --ray")
    out_dir = render.claim_out(out, force)
    metrics = metrics_options(out_dir, tensorboard, metrics_format, node_metrics)
    job = Job("consensus", iterations, seed, sync_timeout, graph,
              allow_disconnected=allow_disconnected, topology=built_in(network))
    run_elsewhere(job, engine, transport, out_dir, metrics, processes=processes, ray=ray,
                  shards=shards)
    executors = jobs.consensus_executors(graph, seed, sync_timeout, x0)
    config = Config(graph, {"iterations": iterations})
    with render.progress_bar(iterations, "consensus") as on_progress:
        result = run_here(engine, config, executors, transport, on_progress, allow_disconnected,
                          count_bytes)
    write_metrics(out_dir, metrics, executors, result)
    show_result(result, config, out_dir,
          jobs.report_consensus(result, config, executors, iterations, out_dir))


def simulate_learning(ctx: typer.Context, problem: opt.ProblemName = "two-moons",
                      nodes: opt.Nodes = 6, topology: opt.TopologyName = "random",
                      seed: opt.Seed = 0, iterations: opt.LearningIterations = None,
                      stepsize: opt.Stepsize = None, extra: opt.ExtraParams = None,
                      network: opt.NetworkFile = None, transport: opt.TransportName = "memory",
                      out: opt.Out = None, sync_timeout: opt.SyncTimeout = DEFAULT_SYNC_TIMEOUT,
                      torch_threads: opt.TorchThreads = 1, compress: opt.Compress = None,
                      agent_command: AgentCommand = None, agent_tls: AgentTlsKits = None,
                      processes: opt.Processes = False,
                      allow_disconnected: opt.AllowDisconnected = False,
                      force: opt.Force = False, engine: Engine = "actors",
                      ray: RayAddress = None, shards: Shards = None,
                      tensorboard: opt.Tensorboard = None,
                      metrics_format: opt.MetricsFormat = "jsonl",
                      node_metrics: opt.NodeMetrics = None) -> None:
    """Train a built-in problem with the algorithm named by the command."""
    check_ray_options(ray, shards, processes)
    algorithm = str(ctx.info_name)
    graph = build_network(topology, nodes, seed, network, algorithm=algorithm,
                          allow_disconnected=allow_disconnected)
    describe_run(seed, topology, graph, network, transport, processes)
    extras = {**jobs.parse_extra(algorithm, extra or []),
              **jobs.compress_extra(algorithm, ALGORITHMS[algorithm].extra_keys(), compress)}
    job = Job.learning(algorithm, graph, problem, seed, sync_timeout, iterations=iterations,
                       stepsize=stepsize, extra=extras, torch_threads=torch_threads,
                       topology=built_in(network))
    task, config = jobs.build_problem(problem, len(graph.nodes), seed), job.config
    _check_agents(algorithm, agent_command, agent_tls, ray, graph)
    out_dir = render.claim_out(out, force)
    metrics = metrics_options(out_dir, tensorboard, metrics_format, node_metrics)
    run_elsewhere(job, engine, transport, out_dir, metrics, processes=processes, ray=ray,
                  shards=shards, node_options=node_options(agent_command, agent_tls))
    executors = jobs.build_executors(job, agents=bool(agent_command))
    with render.progress_bar(config.extra["iterations"], algorithm) as on_progress:
        if agent_command:
            on_actors(engine, "agents compute the nodes' gradients")
            result = simulate_with_agents(config, executors, agent_command, transport=transport,
                                          on_progress=on_progress, tls=agent_tls,
                                          allow_disconnected=allow_disconnected)
        else:
            result = run_here(engine, config, executors, transport, on_progress,
                              allow_disconnected, count_bytes=True)
    write_metrics(out_dir, metrics, executors, result, job.iterations,
                  classification=task.classification)
    show_result(result, config, out_dir,
                ALGORITHMS[algorithm].report(result, job, executors, out_dir))


def _check_agents(algorithm: str, command: str | None, tls: Path | None, ray: str | None,
                  graph: Network) -> None:
    """Refuse agents an algorithm or a Ray run cannot have, and broken startup kits."""
    check_agent_tls(tls, command, *graph.node_ids)
    if command and ALGORITHMS[algorithm].agents is None:
        raise CliInputError(f"{algorithm} has no agent-backed nodes: run it without "
                            "--agent-command")
    if ray is not None and command:
        raise CliInputError("--agent-command does not combine with --ray")


for _name in LEARNING:
    simulate_app.command(_name, help=ALGORITHMS[_name].help)(simulate_learning)
simulate_app.command("fedavg", help=ALGORITHMS["fedavg"].help)(simulate_fedavg)
simulate_app.command("choco-gossip", help=ALGORITHMS["choco-gossip"].help)(simulate_choco_gossip)


@simulate_app.command("push-sum", help=ALGORITHMS["push-sum"].help)
def simulate_push_sum(nodes: opt.Nodes = 6, topology: opt.TopologyName = "random-directed",
                      seed: opt.Seed = 0, iterations: opt.Iterations = 50,
                      network: opt.NetworkFile = None, transport: opt.TransportName = "memory",
                      out: opt.Out = None, sync_timeout: opt.SyncTimeout = DEFAULT_SYNC_TIMEOUT,
                      processes: opt.Processes = False,
                      allow_disconnected: opt.AllowDisconnected = False,
                      count_bytes: opt.CountBytes = False,
                      force: opt.Force = False, engine: Engine = "actors",
                      ray: RayAddress = None, shards: Shards = None,
                      tensorboard: opt.Tensorboard = None,
                      metrics_format: opt.MetricsFormat = "jsonl",
                      node_metrics: opt.NodeMetrics = None) -> None:
    """Push-sum (its help is the registry's)."""
    check_ray_options(ray, shards, processes)
    graph = build_network(topology, nodes, seed, network, algorithm="push-sum",
                          allow_disconnected=allow_disconnected)
    describe_run(seed, topology, graph, network, transport, processes)
    out_dir = render.claim_out(out, force)
    metrics = metrics_options(out_dir, tensorboard, metrics_format, node_metrics)
    job = Job("push-sum", iterations, seed, sync_timeout, graph,
              allow_disconnected=allow_disconnected, topology=built_in(network))
    run_elsewhere(job, engine, transport, out_dir, metrics, processes=processes, ray=ray,
                  shards=shards)
    executors = jobs.push_sum_executors(graph, seed, sync_timeout)
    config = Config(graph, {"iterations": iterations})
    with render.progress_bar(iterations, "push-sum") as on_progress:
        result = run_here(engine, config, executors, transport, on_progress, allow_disconnected,
                          count_bytes)
    write_metrics(out_dir, metrics, executors, result)
    show_result(result, config, out_dir, jobs.report_push_sum(result, config, executors, out_dir))


def simulate_async(ctx: typer.Context, nodes: opt.Nodes = 6, topology: opt.TopologyName = "ring",
                   seed: opt.Seed = 0, iterations: opt.Iterations = 200,
                   extra: opt.ExtraParams = None, network: opt.NetworkFile = None,
                   transport: opt.TransportName = "memory", out: opt.Out = None,
                   sync_timeout: opt.SyncTimeout = DEFAULT_SYNC_TIMEOUT,
                   processes: opt.Processes = False,
                   allow_disconnected: opt.AllowDisconnected = False,
                   force: opt.Force = False, tensorboard: opt.Tensorboard = None,
                   metrics_format: opt.MetricsFormat = "jsonl",
                   node_metrics: opt.NodeMetrics = None) -> None:
    """Asynchronous averaging: --iterations ticks per node; --set max_wait=S,
    scheduled=1, max_delay=TICKS, drop=P."""
    algorithm = str(ctx.info_name)
    graph = build_network(topology, nodes, seed, network, algorithm=algorithm,
                          allow_disconnected=allow_disconnected)
    describe_run(seed, topology, graph, network, transport, processes)
    job = Job(algorithm, iterations, seed, sync_timeout, graph,
              extra=jobs.parse_extra(algorithm, extra or []),
              allow_disconnected=allow_disconnected, topology=built_in(network))
    out_dir = render.claim_out(out, force)
    metrics = metrics_options(out_dir, tensorboard, metrics_format, node_metrics)
    if processes:
        raise typer.Exit(run_processes(job, transport, out_dir,
                                       controller_options=controller_args(metrics)))
    executors = jobs.build_executors(job)
    with render.progress_bar(iterations, algorithm) as on_progress:
        result = run_in_process(job.config, executors, transport, on_progress, allow_disconnected)
    write_metrics(out_dir, metrics, executors, result)
    show_result(result, job.config, out_dir,
          ALGORITHMS[algorithm].report(result, job, executors, out_dir))


for _name in ("gossip", "async-push-sum"):
    simulate_app.command(_name, help=ALGORITHMS[_name].help)(simulate_async)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the app; bad input gives one line on stderr and exit code 2."""
    try:
        with signals_interrupt():  # in a copy of the context: the command's run setup
            code = contextvars.copy_context().run(  # (jobs.use_run_setup) ends with it
                app, args=bare_ray(list(sys.argv[1:] if argv is None else argv)),
                prog_name="peerflow", standalone_mode=False)
    except typer.TyperException as exc:
        return _input_error(exc.format_message(), exc.exit_code)
    except JobError as exc:
        return _input_error(str(exc))
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("peerflow: interrupted by SIGINT", err=True)
        return EXIT_CODE
    except Interrupted as exc:
        typer.echo(f"peerflow: {exc}", err=True)
        return EXIT_CODE
    return code if isinstance(code, int) else 0


def _input_error(message: str, code: int = 2) -> int:
    typer.echo(f"peerflow: error: {message}", err=True)
    return code
