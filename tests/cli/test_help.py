"""What ``--help`` shows: plain flags, plain text, every option explained, simulate first."""

from __future__ import annotations

import re

import pytest
import typer

import peerflow
from peerflow.cli import app, main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def every_command_path() -> list[list[str]]:
    """The argv prefix of every command and group of the app."""
    root = typer.main.get_command(app)
    paths: list[list[str]] = [[]]
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        paths.append([name])
        paths.extend([name, sub] for sub in getattr(command, "commands", {}))
    return paths


@pytest.mark.parametrize("args", [[], ["simulate"]])
def test_a_bare_group_shows_its_help_and_no_empty_error(
        capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, out, err = run_cli(capsys, *args)
    assert code == 2
    assert "Usage: peerflow" in out and "Commands" in out
    assert "error" not in err


def test_version_and_short_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "--version") == (0, f"peerflow {peerflow.__version__}\n", "")
    code, out, _ = run_cli(capsys, "simulate", "consensus", "-h")
    assert code == 0 and "--nodes" in out


def test_simulate_is_the_first_command_listed(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run_cli(capsys, "--help")
    listed = re.findall(r"│ (\w[\w-]*) ", out.split("Commands")[1])
    assert listed[0] == "simulate" and {"controller", "node", "status", "topology"} <= set(listed)


@pytest.mark.parametrize("path", every_command_path(), ids=lambda p: " ".join(p) or "peerflow")
def test_help_has_no_type_placeholder_on_flags_no_markup_and_explains_every_option(
        capsys: pytest.CaptureFixture[str], path: list[str]) -> None:
    code, out, _ = run_cli(capsys, *path, "--help")
    assert code == 0
    assert "<bool>" not in out and "<list" not in out
    assert "``" not in out
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    for param in command.params:
        assert param.help, f"{' '.join(path)} {param.opts} has no help"  # type: ignore[attr-defined]
