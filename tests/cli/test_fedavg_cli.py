"""``peerflow simulate fedavg`` and fedavg jobs across processes, with and without agents."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from peerflow.cli import main
from peerflow.jobs import load_job

EXAMPLE = Path(__file__).parents[2] / "examples" / "fedavg_trainer.py"
ENTRY = "import sys; from peerflow.cli import main; sys.exit(main())"
HELLO_NUMPY = {"numpy_key": [[1, 2, 3], [4, 5, 6], [7, 8, 9]]}
SEED_TRAINER = Path(__file__).parents[1] / "agents" / "flare_trainer.py"
NUMPY_TRAINER = textwrap.dedent("""
    import argparse
    from peerflow.agents import RC, Agent, AgentClosed, MetaKey, TaskResult

    NUMPY_KEY = "numpy_key"

    def main():
        parser = argparse.ArgumentParser()
        parser.add_argument("--site_name", "-s", type=str, required=True)
        parser.add_argument("--agent_id", "-a", type=str, required=True)
        parser.add_argument("--fail", type=str, default="")
        args = parser.parse_args()
        agent = Agent(agent_id=args.agent_id)
        agent.start()
        while True:
            try:
                task = agent.get_task()
            except AgentClosed:
                break
            rc, meta, result = train(task.data, args.site_name == args.fail)
            agent.submit_result(TaskResult(data=result, meta=meta, return_code=rc))
        agent.stop()

    def train(model, fail):
        if fail:
            return RC.EXECUTION_EXCEPTION, None, None
        return RC.OK, {MetaKey.NUM_STEPS_CURRENT_ROUND: 2}, {NUMPY_KEY: model[NUMPY_KEY] + 1.0}

    if __name__ == "__main__":
        main()
""")



def summary_of(out: Path) -> dict[str, Any]:
    return dict(json.loads((out / "summary.json").read_text()))


def weights_of(out: Path) -> dict[str, np.ndarray]:
    with np.load(out / "global_weights.npz") as archive:
        return {name: archive[name] for name in archive.files}


def seed_trainer(tmp_path: Path, secure: bool) -> str:
    """A command running NVFlare's documented trainer (``flare_trainer.py``; its ``train``
    adds 1 and reports as many steps as the model has rows): as is in secure mode, its
    ``secure_mode=True`` made False in plain mode."""
    source = SEED_TRAINER.read_text()
    trainer = tmp_path / "seed_trainer.py"
    trainer.write_text(source if secure else source.replace("secure_mode=True",
                                                            "secure_mode=False"))
    return (f"{shlex.quote(sys.executable)} {shlex.quote(str(trainer))} "
            "--site_name {site} --agent_id {agent_id}")


def hello_numpy(tmp_path: Path) -> tuple[Path, str]:
    """NVFlare's hello-numpy initial model, and a command running its trainer."""
    weights, trainer = tmp_path / "weights.json", tmp_path / "numpy_trainer.py"
    weights.write_text(json.dumps(HELLO_NUMPY))
    trainer.write_text(NUMPY_TRAINER)
    return weights, (f"{shlex.quote(sys.executable)} {shlex.quote(str(trainer))} "
                     "--site_name {site} --agent_id {agent_id}")


@pytest.mark.timeout(120)
def test_in_process_sites_train_the_problem_and_write_summary_plot_and_model(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["simulate", "fedavg", "-n", "3", "-r", "3", "--out", str(out)]) == 0
    assert "results aggregated" in capsys.readouterr().out
    summary = summary_of(out)
    assert summary["status"] == "completed" and summary["algorithm"] == "fedavg"
    assert [r["weights"] for r in summary["rounds"]] == [dict.fromkeys(
        ["site-1", "site-2", "site-3"], 50.0)] * 3  # 5 epochs of 10 batches each
    assert summary["metrics"]["test_loss"] < summary["metrics"]["test_loss_start"] - 0.2
    assert summary["config"]["extra"]["min_clients"] == 1.0
    assert (out / "fedavg_loss.png").stat().st_size > 0
    assert set(weights_of(out)) == {"0.weight", "0.bias", "2.weight", "2.bias", "4.weight",
                                    "4.bias"}


@pytest.mark.timeout(240)
def test_the_example_trainer_behind_agents_gives_the_in_process_model(tmp_path: Path) -> None:
    command = (f"{shlex.quote(sys.executable)} {shlex.quote(str(EXAMPLE))} "
               "--site_name {site} --agent_id {agent_id}")
    args = ["simulate", "fedavg", "-n", "2", "-r", "2"]
    assert main([*args, "--agent-command", command, "--out", str(tmp_path / "agents")]) == 0
    assert main([*args, "--out", str(tmp_path / "local")]) == 0
    agents, local = weights_of(tmp_path / "agents"), weights_of(tmp_path / "local")
    assert all(np.array_equal(agents[name], local[name]) for name in local)
    assert [r["weights"] for r in summary_of(tmp_path / "agents")["rounds"]] == [
        {"site-1": 50.0, "site-2": 50.0}] * 2  # the steps the trainers report in meta
    assert summary_of(tmp_path / "agents")["metrics"] == summary_of(tmp_path / "local")["metrics"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("secure", [False, True])
def test_the_documented_trainer_averages_nvflares_hello_numpy_model_over_3_sites(
        tmp_path: Path, site_kits: Path, secure: bool) -> None:
    weights, _ = hello_numpy(tmp_path)
    out = tmp_path / "out"
    tls = ["--agent-tls", str(site_kits)] if secure else []
    assert main(["simulate", "fedavg", "-n", "3", "-r", "2", "--initial-weights", str(weights),
                 "--agent-command", seed_trainer(tmp_path, secure), *tls,
                 "--out", str(out)]) == 0
    np.testing.assert_array_equal(weights_of(out)["numpy_key"],
                                  np.array(HELLO_NUMPY["numpy_key"], np.float32) + 2)
    summary = summary_of(out)
    assert [r["weights"] for r in summary["rounds"]] == [
        dict.fromkeys(["site-1", "site-2", "site-3"], 3.0)] * 2  # steps: the model's 3 rows
    assert "metrics" in summary and not (out / "fedavg_loss.png").exists()


@pytest.mark.timeout(120)
def test_a_trainer_returning_a_bad_code_aborts_naming_its_site_and_the_code(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights, command = hello_numpy(tmp_path)
    assert main(["simulate", "fedavg", "-n", "3", "--initial-weights", str(weights),
                 "--agent-command", command + " --fail site-2", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "run aborted at site 'site-2' round" in err and "EXECUTION_EXCEPTION" in err
    summary = summary_of(tmp_path / "o")
    assert summary["status"] == "aborted" and summary["node"] == "site-2"
    assert not (tmp_path / "o" / "global_weights.npz").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--min-clients", "4"], "min_clients must be in 1..3 (the sites), got 4"),
    (["--initial-weights", "missing.json"], "initial weights 'missing.json' does not exist"),
    (["--problem", "nope"], "unknown problem 'nope'"),
    (["--initial-weights", "{weights}"], "the initial weights are not two-moons's model"),
])
def test_bad_input_gives_one_line_and_exit_code_2(args: list[str], message: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    weights, _ = hello_numpy(tmp_path)
    args = [arg.replace("{weights}", str(weights)) for arg in args]
    assert main(["simulate", "fedavg", "-n", "3", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_a_fedavg_job_file_reads_its_fields_and_round_trips(tmp_path: Path) -> None:
    weights, _ = hello_numpy(tmp_path)
    path = tmp_path / "job.toml"
    path.write_text('algorithm = "fedavg"\niterations = 3\ninitial_weights = "weights.json"\n'
                    "[extra]\nmin_clients = 2\n[network]\nnodes = 2\n")
    job = load_job(path)
    assert (job.iterations, job.initial_weights, job.stepsize) == (3, str(weights), 0.1)
    again = tmp_path / "again.toml"
    again.write_text(job.to_toml(tmp_path / "network.json"))
    assert load_job(again) == job


@pytest.mark.parametrize(("extra", "message"), [
    ("min_client = 2", "[extra] of fedavg: unknown key 'min_client'; expected one of "
                       "['local_epochs', 'min_clients', 'train_timeout', "
                       "'wait_time_after_min_received']"),
    ("min_clients = 1.5", "[extra] of fedavg: min_clients: expected an integer, got 1.5"),
    ("local_epochs = 0", "[extra] of fedavg: local_epochs: expected an integer >= 1, got 0"),
    ("train_timeout = inf", "[extra] of fedavg: train_timeout: expected a number (finite)"),
])
def test_a_fedavg_job_files_extra_keys_are_checked_and_named(tmp_path: Path, extra: str,
                                                             message: str) -> None:
    path = tmp_path / "job.toml"
    path.write_text(f'algorithm = "fedavg"\n[extra]\n{extra}\n')
    with pytest.raises(ValueError) as caught:
        load_job(path)
    assert message in str(caught.value)


def test_only_a_workflows_job_file_takes_initial_weights(tmp_path: Path) -> None:
    path = tmp_path / "job.toml"
    path.write_text('algorithm = "gt"\ninitial_weights = "w.npz"\n')
    with pytest.raises(ValueError, match="unknown key 'initial_weights'"):
        load_job(path)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.timeout(180)
@pytest.mark.parametrize("mode", ["plain", "secure", "no agents"])
def test_a_fedavg_job_runs_as_controller_node_and_trainer_processes(
        tmp_path: Path, site_kits: Path, mode: str) -> None:
    weights, _ = hello_numpy(tmp_path)
    agents, command = mode != "no agents", seed_trainer(tmp_path, mode == "secure")
    tls = ["--agent-tls", str(site_kits)] if mode == "secure" else []
    job = tmp_path / "job.toml"
    job.write_text('algorithm = "fedavg"\niterations = 2\n'
                   + ('initial_weights = "weights.json"\n' if agents else "")
                   + "[extra]\nmin_clients = 2\nlocal_epochs = 1\n[network]\nnodes = 3\n")
    address = f"127.0.0.1:{free_port()}"
    argv = [["controller", "--job", str(job), "--listen", address, "--out", str(tmp_path / "out")]]
    argv += [["node", "--name", site, "--controller", address,
              *(["--agent-command", command, *tls] if agents else [])]
             for site in ("site-1", "site-2", "site-3")]
    env = {**os.environ, "PEERFLOW_SECRET": "fedavg-test-secret"}
    children = [subprocess.Popen([sys.executable, "-c", ENTRY, *args], env=env,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT) for args in argv]
    try:
        outputs = [child.communicate(timeout=150)[0].decode() for child in children]
    finally:
        for child in children:
            child.kill()
            child.wait()
    assert [child.returncode for child in children] == [0, 0, 0, 0], outputs
    summary = summary_of(tmp_path / "out")
    assert summary["status"] == "completed" and len(summary["rounds"]) == 2
    if agents:
        np.testing.assert_array_equal(weights_of(tmp_path / "out")["numpy_key"],
                                      np.array(HELLO_NUMPY["numpy_key"], np.float32) + 2)
        assert summary["rounds"][1]["weights"] == dict.fromkeys(["site-1", "site-2", "site-3"],
                                                                3.0)
    else:
        assert summary["metrics"]["test_loss"] < summary["metrics"]["test_loss_start"]
