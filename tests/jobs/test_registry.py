"""One registry of algorithms and one job model, read by the CLI, job files and benchmarks."""

from __future__ import annotations

import ast
from pathlib import Path

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
    with pytest.raises(JobError, match=r"--set of gt: unknown fields \['power'\]; expected \[\]"):
        parse_extra("gt", ["power=1"])
    assert parse_extra("subgradient-push", ["power=0.5"]) == {"power": 0.5}


def test_the_registry_names_every_learning_executor_and_its_agent_backed_variant() -> None:
    assert set(LEARNING) == set(algorithms.LEARNING_EXECUTORS)
    assert set(LEARNING) == set(algorithms.AGENT_LEARNING_EXECUTORS)
    assert all(ALGORITHMS[name].agents is not None for name in LEARNING)
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
    with pytest.raises(ConfigError, match=r"unknown fields \['colour'\]; expected \[.*'seed'"):
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
    assert tuple(defaults) == algorithms.LEARNING_EXECUTORS["gtadam"].extra_parameters
