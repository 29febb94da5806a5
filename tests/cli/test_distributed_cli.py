"""The distributed commands: controller, node, status, provision, and simulate over TCP/TLS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peerflow.actors import ConfigError
from peerflow.algorithms import metropolis_hastings, ring
from peerflow.cli import main
from peerflow.cli._distributed import status_lines
from peerflow.cli._secret import new_secret
from peerflow.jobs import Job, load_job
from peerflow.transport import TlsConfig


def one_error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("peerflow: error: "), err
    return err[0]


@pytest.mark.parametrize(("argv", "message"), [
    (["controller", "--job", "missing.toml"], "job file 'missing.toml' does not exist"),
    (["node", "--name", "a", "--controller", "nohost"], "--controller 'nohost' is not HOST:PORT"),
    (["node", "--name", "a", "--controller", "h:1", "--listen", "x"], "--listen 'x' is not"),
    (["status", "127.0.0.1"], "address '127.0.0.1' is not HOST:PORT"),
    (["provision", "missing.yml", "--out", "kits"], "cannot read project file 'missing.yml'"),
    (["simulate", "consensus", "--transport", "udp"], "unknown transport 'udp'"),
    (["node", "--name", "a", "--controller", "h:1", "--tls", "nowhere"], "does not exist"),
    (["node", "--name", "a", "--controller", "h:1"], "plain TCP needs the run's join secret"),
    (["status", "127.0.0.1:1"], "give --secret-file (the file the controller wrote) or set "
                                "PEERFLOW_SECRET"),
    (["status", "127.0.0.1:1", "--secret-file", "missing"], "cannot read --secret-file"),
])
def test_bad_input_gives_one_line_and_exit_code_2(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   argv: list[str], message: str) -> None:
    monkeypatch.delenv("PEERFLOW_SECRET", raising=False)
    assert message in one_error_line(capsys, argv)


def test_the_controller_writes_its_join_secret_where_only_its_user_reads_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PEERFLOW_SECRET", raising=False)
    named = tmp_path / "run.secret"
    with new_secret(named, None) as secret:
        assert secret is not None and len(secret) >= 32
        assert named.read_text() == secret + "\n" and named.stat().st_mode & 0o777 == 0o600
    assert not named.exists()  # a secret lives as long as its run
    with new_secret(None, None) as other:
        own = Path(capsys.readouterr().err.split("--secret-file ")[-1].strip(" )\n"))
        assert own.read_text().strip() == other != secret
        assert own.stat().st_mode & 0o777 == 0o600
    assert not own.exists()  # its own file goes when the controller ends
    monkeypatch.setenv("PEERFLOW_SECRET", "given")
    with new_secret(None, None) as given:
        assert given == "given" and not capsys.readouterr().err
    with new_secret(None, tmp_path) as none:
        assert none is None  # TLS: certificates, no secret


@pytest.mark.parametrize(("job", "message"), [
    ('algorithm = "sgd"\n', "algorithm must be one of ['ad-psgd', 'async-gradient-push', "
     "'async-push-sum', 'choco-gossip', 'choco-sgd', 'consensus', 'dgd', "),
    ('algorithm = "consensus"\niterations = "many"\n',
     "iterations: expected an integer, got 'many'"),
    ('algorithm = "consensus"\ncolour = 1\n', "unknown key 'colour'; expected one of ['algorithm', "
                                              "'iterations', 'network', 'seed', 'sync_timeout']"),
    ('algorithm = "consensus"\n[network]\nsize = 3\n', "[network]: unknown key 'size'; expected "
     "one of ['allow_disconnected', 'file', 'nodes', 'seed', 'topology']"),
    ('algorithm = "consensus"\nsync_timeout = 0\n', "sync_timeout: expected a number >= 0.001, "
                                                    "got 0"),
    ('algorithm = "consensus"\nsync_timeout = inf\n', "sync_timeout: expected a number <= 86400"),
    ('algorithm = "consensus"\n[network]\ntopology = "moebius"\n', "unknown topology"),
    ("algorithm = \n", "is not valid TOML"),
    ('algorithm = "consensus"\nproblem = "two-moons"\n', "unknown key 'problem'"),
    ('algorithm = "gt"\nproblem = "mnist"\n', "unknown problem 'mnist'; choose one of"),
    ('algorithm = "gt"\nstepsize = "big"\n', "stepsize: expected a number, got 'big'"),
    ('algorithm = "dgd"\nstepsize = -0.5\n', "stepsize: expected a number >= 0.0, got -0.5"),
    ('algorithm = "dgd"\nstepsize = nan\n', "stepsize: expected a number >= 0.0, got nan"),
    ('algorithm = "dgd"\nstepsize = inf\n', "stepsize: expected a number (finite), got inf"),
    ('algorithm = "gt"\ntorch_threads = 0\n', "torch_threads: expected an integer >= 1, got 0"),
    ('algorithm = "gt"\nextra = 3\n', "extra: expected a table, got 3"),
    ('algorithm = "gtadam"\n[extra]\nbeta1 = "high"\n',
     "[extra] of gtadam: beta1: expected a number, got 'high'"),
    ('algorithm = "gtadam"\n[extra]\nbeta2 = -1\n',
     "[extra] of gtadam: beta2: expected a number >= 0.0, got -1"),
    ('algorithm = "gtadam"\n[extra]\nbeta = 0.9\n',
     "[extra] of gtadam: unknown key 'beta'; expected one of ['beta1', 'beta2', 'epsilon']"),
    ('algorithm = "gt"\n[extra]\nbeta1 = 0.9\n', "[extra] of gt: unknown key 'beta1'; expected "
                                                   "no keys"),
    ('algorithm = "push-sum"\n[network]\nnodes = "six"\n',
     "network.nodes: expected an integer, got 'six'"),
    ("algorithm = [1]\n", "algorithm must be one of"),
])
def test_bad_job_files_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 job: str, message: str) -> None:
    path = tmp_path / "job.toml"
    path.write_text(job)
    assert message in one_error_line(capsys, ["controller", "--job", str(path)])


def test_provision_writes_a_kit_per_participant(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "project.yml"
    project.write_text("name: demo\nnodes: [site-1, site-2]\n")
    assert main(["provision", str(project), "--out", str(tmp_path / "kits")]) == 0
    assert capsys.readouterr().out.count("\n") == 4  # controller, 2 nodes, admin
    assert TlsConfig.from_dir(tmp_path / "kits", "site-2").name == "site-2"


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_simulate_over_the_network_writes_the_same_histories(
        tmp_path: Path, transport: str, capsys: pytest.CaptureFixture[str]) -> None:
    histories = {}
    for name in ("memory", transport):
        out = tmp_path / name
        assert main(["simulate", "consensus", "-n", "5", "-i", "30", "--transport", name,
                     "--out", str(out)]) == 0
        summary = json.loads((out / "summary.json").read_text())
        histories[name] = {n: r["value_history"] for n, r in summary["results"].items()}
    assert histories["memory"] == histories[transport]


def test_status_lines_show_nodes_iterations_and_connections() -> None:
    link = {"peer": "controller", "address": "127.0.0.1:7000", "tls": True, "direction": "out"}
    report = {"run": "r1", "state": "running",
              "controller": {"address": "127.0.0.1:7000", "connections": []},
              "nodes": [{"name": "site-1", "address": "127.0.0.1:7001", "iteration": 12,
                         "connections": [link]},
                        {"name": "site-2", "address": None, "error": "not registered"}]}
    assert status_lines(report) == [
        "run r1: running", "controller  127.0.0.1:7000",
        "site-1  127.0.0.1:7001  iteration 12",
        "    controller   127.0.0.1:7000         tls dialed",
        "site-2  None  not registered"]


def test_a_learning_job_reads_its_fields_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "job.toml"
    path.write_text('algorithm = "gtadam"\nproblem = "blobs"\nstepsize = 0.1\n'
                    "[extra]\nbeta1 = 0.8\nepsilon = 1e-6\n[network]\ntopology = \"ring\"\n"
                    "nodes = 4\n")
    job = load_job(path)
    assert (job.problem, job.iterations, job.stepsize, job.torch_threads) == ("blobs", 500,
                                                                             0.1, 1)
    assert job.config.extra == {"iterations": 500, "stepsize": 0.1, "beta1": 0.8,
                                "epsilon": 1e-6}  # the order and values simulate runs with
    assert Job.from_spec(job.spec()) == job
    again = tmp_path / "again.toml"
    again.write_text(job.to_toml(tmp_path / "network.json"))
    assert load_job(again) == job
    consensus = Job("consensus", 3, 0, 1.0, job.network)
    again.write_text(consensus.to_toml(tmp_path / "network.json"))
    assert load_job(again) == consensus


def test_a_spec_naming_an_unknown_algorithm_is_refused() -> None:
    spec = Job("consensus", 3, 0, 1.0, metropolis_hastings(ring(2))).spec()
    with pytest.raises(ConfigError, match="algorithm 'sgd' is unknown here"):
        Job.from_spec({**spec, "algorithm": "sgd"})
    with pytest.raises(ConfigError, match="malformed job spec: unknown key 'colour'"):
        Job.from_spec({**spec, "colour": 1})
    with pytest.raises(ConfigError, match="malformed job spec: sync_timeout: expected a number"):
        Job.from_spec({**spec, "sync_timeout": -1.0})
    with pytest.raises(ConfigError, match=r"malformed job spec: extra of consensus: unknown key "):
        Job.from_spec({**spec, "extra": {"power": 1.0}})
