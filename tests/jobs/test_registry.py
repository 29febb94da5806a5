"""One registry of algorithms and one job model, read by the CLI, job files and benchmarks."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import msgspec
import pytest

from peerflow import algorithms
from peerflow.actors import DEFAULT_SYNC_TIMEOUT, ConfigError
from peerflow.cli import main
from peerflow.jobs import ALGORITHMS, LEARNING, Job, JobError, load_job, parse_extra

ROOT = Path(__file__).resolve().parents[2]


def test_an_unknown_set_key_is_refused_in_one_line_naming_the_keys_gtadam_reads(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "gtadam", "-n", "3", "-i", "1", "--set", "beta=0.9"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1
    assert "'beta'" in err and all(key in err for key in ("beta1", "beta2", "epsilon"))


def test_an_algorithm_without_extra_keys_refuses_every_set_key() -> None:
    with pytest.raises(JobError, match=r"^--set of gt: unknown key 'power'; expected no keys$"):
        parse_extra("gt", ["power=1"])
    assert parse_extra("subgradient-push", ["power=0.5"]) == {"power": 0.5}


@pytest.mark.parametrize(("item", "message"), [
    ("beta1=nan", "beta1: expected a number >= 0.0, got nan"),
    ("beta2=-1", "beta2: expected a number >= 0.0, got -1.0"),
    ("epsilon=inf", "epsilon: expected a number (finite), got inf"),
])
def test_a_set_value_that_is_not_a_finite_number_at_least_0_is_refused_naming_its_key(
        item: str, message: str) -> None:
    with pytest.raises(JobError, match=re.escape(f"--set of gtadam: {message}")):
        parse_extra("gtadam", [item])


def test_the_registry_names_every_learning_executor_and_its_agent_backed_variant() -> None:
    synchronous = [name for name in LEARNING if name not in algorithms.ASYNC_LEARNING_EXECUTORS]
    assert set(synchronous) == set(algorithms.LEARNING_EXECUTORS)
    assert set(synchronous) == set(algorithms.AGENT_LEARNING_EXECUTORS)
    assert set(LEARNING) - set(synchronous) == set(algorithms.ASYNC_LEARNING_EXECUTORS)
    assert all(ALGORITHMS[name].agents is not None for name in synchronous)
    assert all(ALGORITHMS[name].help for name in ALGORITHMS)


def test_a_job_file_without_a_sync_timeout_takes_the_executors_default(tmp_path: Path) -> None:
    path = tmp_path / "job.toml"
    path.write_text('algorithm = "consensus"\n[network]\nnodes = 3\n')
    job = load_job(path)
    assert job.sync_timeout == DEFAULT_SYNC_TIMEOUT
    assert algorithms.ConsensusExecutor(0.0).sync_timeout == DEFAULT_SYNC_TIMEOUT
    assert Job.from_spec(job.spec()) == job


def test_a_job_spec_with_an_unknown_field_is_refused_naming_the_fields(tmp_path: Path) -> None:
    path = tmp_path / "job.toml"
    path.write_text('algorithm = "consensus"\n[network]\nnodes = 3\n')
    spec = load_job(path).spec() | {"colour": "red"}
    with pytest.raises(ConfigError, match=r"unknown key 'colour'; expected one of \[.*'seed'"):
        Job.from_spec(spec)


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [node.module for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0]


@pytest.mark.parametrize("folder", ["jobs", "benchmarks"])
def test_jobs_and_benchmarks_import_no_private_module_of_another_package_nor_the_cli(
        folder: str) -> None:
    for path in sorted((ROOT / folder).glob("*.py")):
        for module in _imports(path):
            if not module.startswith("peerflow."):
                continue
            assert not module.startswith("peerflow.cli"), f"{path.name} imports {module}"
            assert not any(part.startswith("_") for part in module.split(".")[2:]), (
                f"{path.name} imports the private {module}")


def test_the_registry_names_the_defaults_the_gtadam_executor_uses() -> None:
    defaults = ALGORITHMS["gtadam"].extra_defaults()
    assert defaults == {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}
    assert ALGORITHMS["gtadam"].tunables() is algorithms.LEARNING_EXECUTORS["gtadam"].tunables


def test_fedavgs_extra_keys_are_one_struct_of_counts_and_seconds() -> None:
    spec = ALGORITHMS["fedavg"]
    assert spec.tunables() is algorithms.FedAvgTunables
    assert spec.extra_defaults() == {"min_clients": 1, "wait_time_after_min_received": 10.0,
                                     "train_timeout": 0.0, "local_epochs": 5}
    assert spec.check_extra({"min_clients": 2}, "[extra]") == {"min_clients": 2}
    with pytest.raises(JobError, match=r"\[extra\] of fedavg: local_epochs: expected an "
                                       r"integer >= 1, got 0"):
        spec.check_extra({"local_epochs": 0}, "[extra]")


@pytest.mark.parametrize("name", LEARNING)
def test_the_registry_gives_each_learning_algorithms_extra_keys_with_types_and_defaults(
        name: str) -> None:
    spec = ALGORITHMS[name]
    fields = msgspec.structs.fields(spec.tunables())
    assert spec.extra_keys() == tuple(field.name for field in fields)
    assert spec.extra_defaults() == {field.name: field.default for field in fields}
    assert all(field.type == algorithms.NonNegative or (field.name, field.type) ==
               ("compress", str) for field in fields)
    assert ALGORITHMS["subgradient-push"].extra_defaults() == {"power": 0.0}


def test_a_job_written_as_toml_reads_back_to_an_equal_job(tmp_path: Path) -> None:
    folder = tmp_path / "a 'quoted' folder é"
    folder.mkdir()
    network = algorithms.metropolis_hastings(algorithms.ring(3))
    ring = {"name": "ring", "nodes": 3, "seed": 2}  # how it was made, for the summary
    jobs = [Job("push-sum", 7, 2, 0.5, network, allow_disconnected=True, topology=ring),
            Job("gtadam", 9, 1, 3.0, network, problem="least-squares", stepsize=0.25,
                extra={"epsilon": 1e-12, "beta1": 0.5}, torch_threads=2, topology=ring)]
    for job in jobs:
        path = folder / "job.toml"
        path.write_text(job.to_toml(folder / "network.json"))
        assert tomllib.loads(path.read_text())["network"]["file"] == str(folder / "network.json")
        assert load_job(path) == job
