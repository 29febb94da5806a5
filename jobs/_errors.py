"""Wrong input to a job: a bad file, option, key or value, said in one line."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

_KINDS = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
          "object": "a table", "array": "an array"}
"""msgspec's type names in a TOML user's words (``null``, None, has no TOML form)."""
_FINITE = f" <= {sys.float_info.max!r}"
"""How msgspec words the bound that keeps a number finite."""
_EXPECTED = re.compile(r"Expected `(?P<kinds>[^`]+)`(?P<bound>[^,]*)(?:, got `(?P<got>\w+)`)?$")


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


def invalid(exc: msgspec.ValidationError, model: type, data: Any, where: str) -> JobError:
    """msgspec's complaint about ``data`` (converted to ``model``) in one line that names
    the key (as a dotted TOML key), what it expected and what it got, or, for an unknown
    key, the keys allowed there."""
    message, _, at = str(exc).partition(" - at `$")
    keys = re.findall(r"\.([^.\[`]+)", at)
    unknown = re.fullmatch(r"Object contains unknown field `(.+)`", message)
    if unknown:
        known = sorted(field.name for field in msgspec.structs.fields(_struct_at(model, keys)))
        table = f" [{'.'.join(keys)}]" if keys else ""
        return JobError(f"{where}{table}: unknown key {unknown[1]!r}; expected "
                        + (f"one of {known}" if known else "no keys"))
    key = at.rstrip("`").lstrip(".")
    place = f"{where}: {key}" if key else where
    expected = _EXPECTED.fullmatch(message)
    if expected is None:  # e.g. a required key missing
        quoted = message.replace("`", "'")
        return JobError(f"{place}: {quoted[:1].lower()}{quoted[1:]}")
    kinds = " or ".join(_KINDS.get(kind, kind) for kind in expected["kinds"].split(" | ")
                        if kind != "null")
    bound = expected["bound"].replace(_FINITE, " (finite)")
    got = _KINDS.get(expected["got"] or "", "another value")
    if "[" not in at:  # a key's path, not a list's or dict's item: show the value itself
        got = repr(_value_at(data, keys))
    return JobError(f"{place}: expected {kinds}{bound}, got {got}")


def _struct_at(model: Any, keys: list[str]) -> Any:
    for key in keys:
        model = next(field.type for field in msgspec.structs.fields(model) if field.name == key)
    return model


def _value_at(data: Any, keys: list[str]) -> Any:
    for key in keys:
        data = data[key]
    return data
