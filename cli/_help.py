"""How the commands look in ``--help``: plain flags, plain text, ``simulate`` first.

typer shows a ``<bool>`` placeholder after every flag (``--force <bool>``) although a
flag takes no value, and a variadic argument's Python type (``<list[Path]>``); the
commands' help is their docstring, written in reST for
readers of the code: double backquotes are markup there, noise on a terminal.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

FIRST = ("simulate",)
"""Commands listed before the others, in this order (the rest keep theirs)."""

_LITERAL = re.compile(r"``([^`]+)``")


def plain(text: str | None) -> str | None:
    """``text`` with reST literals (double backquotes) shown as 'quoted'."""
    return None if text is None else _LITERAL.sub(r"'\1'", text)


class _Plain:
    """Flags without a value placeholder; help without reST markup."""

    help: str | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = plain(self.help)

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
            if param.param_type_name == "argument" and param.nargs != 1:
                # its items' name, repeated; not its Python type (<list[Path]>)
                shown = f"<{(param.metavar or 'value').lower()}>..."
                param.display_type_rich = lambda ctx, shown=shown: shown
        return params


class Command(_Plain, TyperCommand):
    """A command as the help shows it."""


class Group(_Plain, TyperGroup):
    """A group of commands as the help shows it, ``FIRST`` listed first."""

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        first = [name for name in FIRST if name in names]
        return first + [name for name in names if name not in first]


class App(typer.Typer):
    """A typer app whose groups and commands are ``Group`` and ``Command``, with ``-h``
    beside ``--help``; run without a command it shows its help (exit 2)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cls=Group, invoke_without_command=True, add_completion=False,
                         context_settings={"help_option_names": ["-h", "--help"]},
                         pretty_exceptions_enable=False, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        kwargs.setdefault("cls", Command)
        return super().command(*args, **kwargs)


def help_when_bare(ctx: typer.Context) -> None:
    """A group's callback: with no command, show the group's help and exit 2."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(2)
