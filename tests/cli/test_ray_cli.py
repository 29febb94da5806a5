"""``--ray [ADDRESS]``: its parsing, and what it says when Ray is missing or misused."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from peerflow.cli import main
from peerflow.cli._ray import bare_ray


def test_a_bare_ray_option_gets_an_empty_address() -> None:
    assert bare_ray(["simulate", "consensus", "--ray"]) == ["simulate", "consensus", "--ray", ""]
    assert bare_ray(["--ray", "--shards", "2"]) == ["--ray", "", "--shards", "2"]
    assert bare_ray(["--ray", "ray://head:10001"]) == ["--ray", "ray://head:10001"]


def test_ray_missing_is_one_line_telling_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    assert main(["simulate", "consensus", "--nodes", "4", "--ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["peerflow: error: --ray needs Ray, which is not installed: "
                   "pip install 'peerflow[ray]'"]


def test_the_controller_refuses_tls_kits_with_ray(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = tmp_path / "job.toml"
    job.write_text('algorithm = "consensus"\n')
    assert main(["controller", "--job", str(job), "--ray", "--tls", str(tmp_path)]) == 2
    assert "--tls takes a provisioned project's kits" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--shards", "2"], "--shards goes with --ray"),
    (["--ray", "--processes"], "--ray and --processes both run the nodes outside"),
])
def test_ray_options_that_do_not_go_together_are_refused(
        args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "consensus", "--nodes", "4", *args]) == 2
    assert message in capsys.readouterr().err
