"""The ``peerflow`` command: thin typer commands that parse, build, run and render.

Nothing here imports torch: ``peerflow --help``, consensus and the distributed
commands start fast; the learning commands import it when they run.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

import peerflow
from peerflow import jobs
from peerflow.actors import (
    DEFAULT_SYNC_TIMEOUT,
    Config,
    ConfigError,
    RunResult,
    Schedule,
    memory_transport,
)
from peerflow.algorithms import describe, describe_schedule
from peerflow.jobs import (
    ALGORITHMS,
    LEARNING,
    Job,
    JobError,
    build_network,
    in_process_timeout,
    write_json,
)

from . import _options as opt
from . import _render as render
from ._agents import AgentCommand, AgentTlsKits, check_agent_tls, simulate_with_agents
from ._bench import add_commands as add_bench_commands
from ._choco import simulate_choco_gossip
from ._distributed import add_commands as add_distributed_commands
from ._engine import Engine, on_actors, run_batched
from ._errors import CliInputError
from ._fedavg import simulate_fedavg
from ._help import App, help_when_bare
from ._interrupt import EXIT_CODE, Interrupted, end_process, run_async, signals_interrupt
from ._launch import network_transport, node_options, run_processes
from ._ray import RayAddress, Shards, bare_ray, check_ray_options, run_ray

app = App(name="peerflow", help="Peer-to-peer distributed optimization on async actors.")
simulate_app = App(help="Run a whole job on this host and report it.")
simulate_app.callback()(help_when_bare)
app.add_typer(simulate_app, name="simulate")
add_distributed_commands(app)
add_bench_commands(app)


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
                       force: opt.Force = False, engine: Engine = "actors",
                       ray: RayAddress = None, shards: Shards = None) -> None:
    """Consensus (its help is the registry's)."""
    check_ray_options(ray, shards, processes)
    graph = build_network(topology, nodes, seed, network, algorithm="consensus",
                          allow_disconnected=allow_disconnected)
    x0 = None if initial_values is None else jobs.load_initial_values(initial_values, graph)
    if (processes or ray is not None) and x0 is not None:
        raise CliInputError("--initial-values runs in one process; it does not combine with "
                            "--processes or --ray")
    out_dir = render.claim_out(out, force)
    job = Job("consensus", iterations, seed, sync_timeout, graph,
              allow_disconnected=allow_disconnected)
    if ray is not None:
        on_actors(engine, _RAY)
        raise typer.Exit(run_ray(job, ray, shards, out_dir, scheme=network_transport(transport)))
    if processes:
        on_actors(engine, _PROCESSES)
        raise typer.Exit(run_processes(job, transport, out_dir))
    executors = jobs.consensus_executors(graph, seed, sync_timeout, x0)
    config = Config(graph, {"iterations": iterations})
    with render.progress_bar(iterations, "consensus") as on_progress:
        result = (run_batched(engine, config, executors, transport, on_progress,
                              allow_disconnected)
                  or _simulate(config, executors, transport, on_progress, allow_disconnected))
    _exit_on_interrupt("consensus", result, config, executors, out_dir)
    render.print_table(*jobs.report_consensus(result, config, executors, iterations, out_dir))
    _exit_on_abort(result)


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
                      ray: RayAddress = None, shards: Shards = None) -> None:
    """Train a built-in problem with the algorithm named by the command."""
    check_ray_options(ray, shards, processes)
    algorithm = str(ctx.info_name)
    graph = build_network(topology, nodes, seed, network, algorithm=algorithm,
                          allow_disconnected=allow_disconnected)
    extras = {**jobs.parse_extra(algorithm, extra or []),
              **jobs.compress_extra(algorithm, ALGORITHMS[algorithm].extra_keys(), compress)}
    job = Job.learning(algorithm, graph, problem, seed, sync_timeout, iterations=iterations,
                       stepsize=stepsize, extra=extras, torch_threads=torch_threads)
    config = job.config
    check_agent_tls(agent_tls, agent_command, *graph.node_ids)
    if agent_command and ALGORITHMS[algorithm].agents is None:
        raise CliInputError(f"{algorithm} has no agent-backed nodes: run it without "
                            "--agent-command")
    out_dir = render.claim_out(out, force)
    if ray is not None:
        on_actors(engine, _RAY)
        if agent_command:
            raise CliInputError("--agent-command does not combine with --ray")
        raise typer.Exit(run_ray(job, ray, shards, out_dir, scheme=network_transport(transport)))
    if processes:
        on_actors(engine, _PROCESSES)
        raise typer.Exit(run_processes(job, transport, out_dir,
                                       node_options(agent_command, agent_tls)))
    executors = jobs.build_executors(job, agents=bool(agent_command))
    with render.progress_bar(config.extra["iterations"], algorithm) as on_progress:
        if agent_command:
            on_actors(engine, "agents compute the nodes' gradients")
            result = simulate_with_agents(config, executors, agent_command, transport=transport,
                                          on_progress=on_progress, tls=agent_tls,
                                          allow_disconnected=allow_disconnected)
        else:
            result = (run_batched(engine, config, executors, transport, on_progress,
                                  allow_disconnected)
                      or _simulate(config, executors, transport, on_progress,
                                   allow_disconnected, count_bytes=True))
    _exit_on_interrupt(algorithm, result, config, executors, out_dir)
    render.print_table(*ALGORITHMS[algorithm].report(result, job, executors, out_dir))
    _exit_on_abort(result)


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
                      force: opt.Force = False, engine: Engine = "actors",
                      ray: RayAddress = None, shards: Shards = None) -> None:
    """Push-sum (its help is the registry's)."""
    check_ray_options(ray, shards, processes)
    graph = build_network(topology, nodes, seed, network, algorithm="push-sum",
                          allow_disconnected=allow_disconnected)
    out_dir = render.claim_out(out, force)
    job = Job("push-sum", iterations, seed, sync_timeout, graph,
              allow_disconnected=allow_disconnected)
    if ray is not None:
        on_actors(engine, _RAY)
        raise typer.Exit(run_ray(job, ray, shards, out_dir, scheme=network_transport(transport)))
    if processes:
        on_actors(engine, _PROCESSES)
        raise typer.Exit(run_processes(job, transport, out_dir))
    executors = jobs.push_sum_executors(graph, seed, sync_timeout)
    config = Config(graph, {"iterations": iterations})
    with render.progress_bar(iterations, "push-sum") as on_progress:
        result = (run_batched(engine, config, executors, transport, on_progress,
                              allow_disconnected)
                  or _simulate(config, executors, transport, on_progress, allow_disconnected))
    _exit_on_interrupt("push-sum", result, config, executors, out_dir)
    render.print_table(*jobs.report_push_sum(result, config, executors, out_dir))
    _exit_on_abort(result)


def simulate_async(ctx: typer.Context, nodes: opt.Nodes = 6, topology: opt.TopologyName = "ring",
                   seed: opt.Seed = 0, iterations: opt.Iterations = 200,
                   extra: opt.ExtraParams = None, network: opt.NetworkFile = None,
                   transport: opt.TransportName = "memory", out: opt.Out = None,
                   sync_timeout: opt.SyncTimeout = DEFAULT_SYNC_TIMEOUT,
                   processes: opt.Processes = False,
                   allow_disconnected: opt.AllowDisconnected = False,
                   force: opt.Force = False) -> None:
    """Asynchronous averaging: --iterations ticks per node; --set max_wait=S,
    scheduled=1, max_delay=TICKS, drop=P."""
    algorithm = str(ctx.info_name)
    graph = build_network(topology, nodes, seed, network, algorithm=algorithm,
                          allow_disconnected=allow_disconnected)
    job = Job(algorithm, iterations, seed, sync_timeout, graph,
              extra=jobs.parse_extra(algorithm, extra or []),
              allow_disconnected=allow_disconnected)
    out_dir = render.claim_out(out, force)
    if processes:
        raise typer.Exit(run_processes(job, transport, out_dir))
    executors = jobs.build_executors(job)
    with render.progress_bar(iterations, algorithm) as on_progress:
        result = _simulate(job.config, executors, transport, on_progress, allow_disconnected)
    _exit_on_interrupt(algorithm, result, job.config, executors, out_dir)
    render.print_table(*ALGORITHMS[algorithm].report(result, job, executors, out_dir))
    _exit_on_abort(result)


for _name in ("gossip", "async-push-sum"):
    simulate_app.command(_name, help=ALGORITHMS[_name].help)(simulate_async)


@app.command("topology")
def topology(nodes: opt.Nodes = 6, topology: opt.TopologyName = "random", seed: opt.Seed = 0,
             network: opt.NetworkFile = None, out: opt.Out = None,
             force: opt.Force = False) -> None:
    """Print a network's weights, stochasticity and spectral gap (of a time-varying one,
    the period product's contraction); with --out, write network.json (loadable with
    --network) and topology.json (the figures)."""
    graph = build_network(topology, nodes, seed, network, allow_disconnected=True)
    out_dir = render.claim_out(out, force)
    schedule = graph.networks if isinstance(graph, Schedule) else None
    report = describe(graph) if schedule is None else describe_schedule(graph)
    rows = [(k.replace("_", " "), f"{v:.6g}" if isinstance(v, float) else str(v))
            for k, v in asdict(report).items()]
    render.print_table("topology", rows)
    for t, phase in enumerate(schedule or [graph]):
        if schedule is not None:
            typer.echo(f"iteration {t} (mod {len(schedule)}):")
        for node in phase.nodes:
            weights = ", ".join(f"{n.id}: {n.weight:.4g}" for n in node.neighbors)
            typer.echo(f"{node.id} <- {weights or '(no neighbours)'}")
    if out_dir is not None:
        write_json(out_dir / "network.json", graph.to_dict())
        write_json(out_dir / "topology.json", asdict(report))


_PROCESSES = "--processes runs one process per node"
_RAY = "--ray runs the nodes in shards of actors"


def _simulate(config: Config, executors: Mapping[str, Any], transport: str,
              on_progress: Callable[[Mapping[str, int | None]], None],
              allow_disconnected: bool, count_bytes: bool = False) -> RunResult:
    """Run the job; SIGINT or SIGTERM stop every node and give an "interrupted" result.
    ``count_bytes``: in memory, count what each node sends (it costs an encode per value)."""
    def stop() -> None:
        # The run's objects live until exit: spare them the full collections that the
        # unwinding and the summary would trigger (seconds at 10,000 nodes).
        gc.freeze()
        for executor in executors.values():
            executor.stop()

    started = time.perf_counter()
    carrier = memory_transport(count_bytes=count_bytes) if transport == "memory" else transport
    try:
        return run_async(lambda: peerflow.run(
            config, executors, carrier, on_progress=on_progress,
            allow_disconnected=allow_disconnected,
            config_timeout=in_process_timeout(10.0, len(executors))),
                         on_signal=stop)
    except ConfigError as exc:
        raise CliInputError(str(exc)) from exc
    except Interrupted as exc:
        reached = [ex.iteration for ex in executors.values() if ex.iteration is not None]
        return RunResult("interrupted", str(exc), iteration=min(reached, default=None),
                         timings={"total": time.perf_counter() - started})


def _exit_on_interrupt(algorithm: str, result: RunResult, config: Config,
                       executors: Mapping[str, Any], out: Path | None) -> None:
    if result.status == "interrupted":
        render.report_interrupted(algorithm, result, config,
                                  {node: ex.iteration for node, ex in executors.items()}, out)
        end_process(EXIT_CODE)


def _exit_on_abort(result: RunResult) -> None:
    if not result.ok:
        typer.echo(f"peerflow: run aborted at node {result.node!r} iteration "
                   f"{result.iteration}: {result.reason}", err=True)
        raise typer.Exit(1)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the app; bad input gives one line on stderr and exit code 2."""
    try:
        with signals_interrupt():
            code = app(args=bare_ray(list(sys.argv[1:] if argv is None else argv)),
                       prog_name="peerflow",
                       standalone_mode=False)
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
