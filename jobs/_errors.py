"""Wrong input to a job: a bad file, option, key or value, said in one line."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class JobError(ValueError):
    """The job's input is wrong; the message says what and how to fix it."""


def parse_file(path: Path, what: str, parse: Callable[[str], T],
               syntax_error: type[Exception], syntax: str) -> T:
    """Read ``path`` and ``parse`` its text, naming the file in any error.

    Raises:
        JobError: the file is missing, unreadable, nested too deeply, or not
            valid ``syntax``.
    """
    try:
        return parse(path.read_text())
    except FileNotFoundError:
        raise JobError(f"{what} {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise JobError(f"cannot read {what} {str(path)!r}: {exc}") from exc
    except syntax_error as exc:
        raise JobError(f"{what} {str(path)!r} is not valid {syntax}: {exc}") from exc
    except RecursionError:
        raise JobError(f"{what} {str(path)!r} is nested too deeply to read") from None


def no_unknown(data: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    """Refuse keys of ``data`` outside ``known``, naming both.

    Raises:
        JobError: ``data`` has a key that is not in ``known``.
    """
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise JobError(f"{where}: unknown fields {unknown}; expected {sorted(known)}")
