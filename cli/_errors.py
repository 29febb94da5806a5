"""Bad command-line input: one clear line on stderr and exit code 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class CliInputError(Exception):
    """The user's input is wrong; the message says what and how to fix it."""


def parse_file(path: Path, what: str, parse: Callable[[str], T],
               syntax_error: type[Exception], syntax: str) -> T:
    """Read ``path`` and ``parse`` its text, naming the file in any error.

    Raises:
        CliInputError: the file is missing, unreadable, nested too deeply, or not
            valid ``syntax``.
    """
    try:
        return parse(path.read_text())
    except FileNotFoundError:
        raise CliInputError(f"{what} {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliInputError(f"cannot read {what} {str(path)!r}: {exc}") from exc
    except syntax_error as exc:
        raise CliInputError(f"{what} {str(path)!r} is not valid {syntax}: {exc}") from exc
    except RecursionError:
        raise CliInputError(f"{what} {str(path)!r} is nested too deeply to read") from None
