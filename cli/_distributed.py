"""``peerflow controller | node | status | provision``: runs across processes and hosts.

A session on one host (each command in its own terminal)::

    peerflow controller --job job.toml --listen 127.0.0.1:7000 --out out/
    peerflow node --name site-1 --controller 127.0.0.1:7000
    ...                                       (one per node of the job's network)
    peerflow status 127.0.0.1:7000

The job (see ``_jobs``) is consensus, push-sum or a learning algorithm; the
controller writes the summary.json and plots ``peerflow simulate`` would. With
``--agent-command "python examples/trainer.py"``, a node of a learning job starts
one agent process, which computes that node's gradients and losses.

With ``peerflow provision project.yml --out kits/`` first and ``--tls kits/``
on every command, every connection is mutual TLS and names come from certificates.
Without TLS, only holders of the run's join secret get in: the controller makes
one (or takes ``PEERFLOW_SECRET``) and writes it to ``--secret-file`` (or to a
file of its own, whose path it prints); nodes and ``status`` read it from their
``--secret-file`` or ``PEERFLOW_SECRET``, never from the command line, which
``ps`` shows to every user.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from peerflow.actors import (
    ActorError,
    ConfigError,
    DistOptController,
    RunResult,
    query_status,
    serve_controller,
    serve_node,
)
from peerflow.jobs import RunSetup, use_run_setup
from peerflow.transport import (
    NetworkTransport,
    ProvisionError,
    TlsConfigError,
    TransportError,
    create_transport,
    load_project,
    provision,
    split_address,
)

from . import _options as opt
from . import _render as render
from ._agents import (
    AgentCommand,
    AgentTlsKits,
    agent_lines,
    check_agent_tls,
    serve_with_agent,
)
from ._errors import CliInputError
from ._interrupt import EXIT_CODE, Interrupted, run_async
from ._jobs import Job, build_controller, build_executors, load_job, report_job
from ._metrics import metrics_options, write_node_metrics
from ._options import Force
from ._ray import ControllerListen, RayAddress, Shards, check_ray_options, controller_on_ray
from ._secret import new_secret, read_secret

Listen = Annotated[str, typer.Option("--listen", help="HOST:PORT to listen on (port 0: any).")]
Tls = Annotated[Path | None, typer.Option(
    "--tls", help="TLS kit folder (or the provision output folder): mutual TLS on.")]
JoinTimeout = Annotated[float, typer.Option(
    "--join-timeout", min=0.1, help="Seconds to wait for every node (or the controller).")]
SecretFile = Annotated[Path | None, typer.Option(
    "--secret-file", help="Plain TCP: the file holding the run's join secret (the controller "
    "writes it; or set PEERFLOW_SECRET).")]
ADMIN = "admin"


def add_commands(app: typer.Typer) -> None:
    """Register the distributed commands on the ``peerflow`` app."""
    app.command("controller")(controller)
    app.command("node")(node)
    app.command("status")(status)
    app.command("provision")(provision_command)


def controller(job_file: Annotated[Path, typer.Option("--job", help="The job (TOML).")],
               listen: ControllerListen = None, tls: Tls = None,
               out: Annotated[Path | None, typer.Option(
                   "--out", "-o", help="Folder for summary.json and plots.")] = None,
               join_timeout: JoinTimeout = 60.0, secret_file: SecretFile = None,
               force: Force = False, ray: RayAddress = None, shards: Shards = None,
               tensorboard: opt.Tensorboard = None, metrics_format: opt.MetricsFormat = "jsonl",
               node_metrics: opt.NodeMetrics = None) -> None:
    """Run a job whose nodes are ``peerflow node`` processes, or Ray actors; write its summary."""
    check_ray_options(ray, shards)
    job = load_job(job_file)
    workflow = build_controller(job)
    made = job.topology or {"name": "file" if workflow is None else "sites",  # a workflow's
                            "nodes": len(job.network.nodes)}  # network is its sites
    use_run_setup(RunSetup(job.seed, made, "tls" if tls else "tcp"))
    out_dir = render.claim_out(out, force)
    metrics = metrics_options(out_dir, tensorboard, metrics_format, node_metrics)
    if ray is not None:
        raise typer.Exit(controller_on_ray(job, ray, shards, out_dir, listen, tls, workflow))
    try:
        result = _serve(job, listen or "127.0.0.1:7000", tls, secret_file, join_timeout,
                        workflow)
    except Interrupted as exc:
        render.report_interrupted(job.algorithm, RunResult("interrupted", str(exc)),
                                  job.config, out_dir)
        raise typer.Exit(EXIT_CODE) from None
    report_job(result, job, out_dir, workflow)
    write_node_metrics(out_dir, metrics, result, job, workflow)
    if not result.ok:
        typer.echo(f"peerflow: run aborted at node {result.node!r} iteration "
                   f"{result.iteration}: {result.reason}", err=True)
        raise typer.Exit(1)


def _serve(job: Job, listen: str, tls: Path | None, secret_file: Path | None,
           join_timeout: float, workflow: DistOptController | None) -> RunResult:
    """Listen on ``listen`` and run ``job`` with the nodes that join.

    Raises:
        Interrupted: SIGINT or SIGTERM stopped it.
    """
    nodes = set(job.network.node_ids)
    with new_secret(secret_file, tls) as secret:
        transport = _transport(listen, "controller", tls, run_id=uuid.uuid4().hex,
                               joiners=lambda name: name in nodes or name.startswith(ADMIN),
                               reconnect_window=0.0, secret=secret)

        def listening(address: str) -> None:
            typer.echo(f"controller listening on {transport.scheme}://{address} "
                       f"(run {transport.run_id}); waiting for {len(nodes)} nodes", err=True)

        return run_async(lambda: serve_controller(
            job.config, job.spec(), transport, join_timeout=join_timeout,
            on_listening=listening, controller=workflow))


def node(name: Annotated[str, typer.Option("--name", help="This node's id in the network.")],
         controller_address: Annotated[str, typer.Option(
             "--controller", help="HOST:PORT of the controller.")],
         listen: Listen = "127.0.0.1:0", tls: Tls = None,
         join_timeout: JoinTimeout = 60.0, agent_command: AgentCommand = None,
         agent_tls: AgentTlsKits = None, secret_file: SecretFile = None) -> None:
    """Join a controller's run as one node; exit 0 when the job completes."""
    _check_address(controller_address, "--controller")
    check_agent_tls(agent_tls, agent_command, name)
    transport = _transport(listen, name, tls, secret_file, join_timeout,
                           connect_timeout=join_timeout)
    serve = partial(serve_node, name, controller_address, transport, join_timeout=join_timeout)
    build = _build_executor(name, agents=bool(agent_command))
    try:
        outcome = run_async(lambda: serve_with_agent(agent_command, name, serve, build,
                                                      tls=agent_tls)
                             if agent_command else serve(build))
    except ConfigError as exc:
        raise CliInputError(str(exc)) from exc
    except (TransportError, TimeoutError, ActorError) as exc:
        typer.echo(f"peerflow: node {name!r} cannot join {controller_address}: "
                   f"{exc or type(exc).__name__}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"node {name!r}: run {outcome.get('status')}"
               + (f": {outcome['reason']}" if outcome.get("reason") else ""), err=True)
    if outcome.get("status") != "completed":
        raise typer.Exit(1)


def _build_executor(name: str, *, agents: bool) -> Callable[[Any], Any]:
    """Build node ``name``'s executor from the job spec the controller hands out."""
    def build(spec: Any) -> Any:
        return build_executors(Job.from_spec(spec), agents=agents)[name]
    return build


def status(address: Annotated[str, typer.Argument(help="HOST:PORT of a running controller.")],
           tls: Tls = None,
           name: Annotated[str, typer.Option("--name", help="Admin name (TLS: as in its "
                                             "certificate).")] = ADMIN,
           timeout: Annotated[float, typer.Option(
               "--timeout", min=0.1, help="Seconds to wait for the controller's answer.")] = 10.0,
           secret_file: SecretFile = None) -> None:
    """List a running controller's nodes, their connections and iterations."""
    _check_address(address, "address")
    transport = _transport("127.0.0.1:0", name, tls, secret_file, connect_timeout=timeout,
                           dial_only=True)
    try:
        report = run_async(lambda: query_status(address, transport, timeout))
    except (TransportError, TimeoutError, ActorError) as exc:
        typer.echo(f"peerflow: no status from {address}: {exc or type(exc).__name__}", err=True)
        raise typer.Exit(1) from None
    typer.echo("\n".join(status_lines(report)))


def status_lines(report: dict[str, Any]) -> list[str]:
    """Render a controller's status: the run, then each node and its connections."""
    controller = report["controller"]
    lines = [f"run {report['run']}: {report['state']}",
             f"controller  {controller['address']}", *_link_lines(controller["connections"])]
    for entry in report["nodes"]:
        where = f"{entry['name']}  {entry.get('address')}"
        if "error" in entry:
            lines.append(f"{where}  {entry['error']}")
            continue
        lines.append(f"{where}  iteration {entry['iteration']}")
        lines += _link_lines(entry["connections"])
        lines += agent_lines(entry.get("agents", []))
    return lines


def _link_lines(connections: list[dict[str, Any]]) -> list[str]:
    return [f"    {c['peer']:<12} {c['address']:<22} {'tls' if c['tls'] else 'tcp'} "
            f"{'dialed' if c['direction'] == 'out' else 'accepted'}" for c in connections]


def provision_command(project: Annotated[Path, typer.Argument(help="PROJECT.yml")],
                      out: Annotated[Path, typer.Option("--out", "-o",
                                                        help="Folder for the kits.")]) -> None:
    """Create a project CA and a TLS kit per participant (like NVFlare's startup kits)."""
    try:
        kits = provision(load_project(project), out)
    except ProvisionError as exc:
        raise CliInputError(str(exc)) from exc
    except OSError as exc:
        raise CliInputError(f"cannot write kits to {str(out)!r}: {exc}") from exc
    for name, folder in kits.items():
        typer.echo(f"{name}: {folder}")


def _transport(listen: str, name: str, tls: Path | None, secret_file: Path | None = None,
               secret_wait: float = 0.0, **options: Any) -> NetworkTransport:
    """A transport for a command; the join secret is ``options["secret"]`` if given,
    else read as ``read_secret`` reads it."""
    _check_address(listen, "--listen")
    if "secret" not in options:
        options["secret"] = read_secret(secret_file, tls, secret_wait)
    scheme = "tls" if tls is not None else "tcp"
    try:
        transport = create_transport(f"{scheme}://{listen}", name=name, tls=tls, **options)
    except TlsConfigError as exc:
        raise CliInputError(str(exc)) from exc
    except ValueError as exc:
        raise CliInputError(f"{exc}") from exc
    assert isinstance(transport, NetworkTransport)
    return transport


def _check_address(address: str, option: str) -> None:
    try:
        split_address(address)
    except ValueError:
        raise CliInputError(f"{option} {address!r} is not HOST:PORT") from None
