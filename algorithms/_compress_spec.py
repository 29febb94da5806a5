"""Compressor specs as the command line and job files write them, checked without torch:
``none``, ``top-k:FRACTION``, ``random-k:FRACTION``, ``qsgd:LEVELS``."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

__all__ = ["COMPRESSOR_FORMS", "CompressSpec", "parse_compress_spec"]


class CompressSpec(NamedTuple):
    """A checked spec: the compressor's name and its parameter (None for "none")."""

    name: str
    parameter: float | int | None


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise ValueError(f"the fraction kept must be in (0, 1], got {text}")
    return value


def _levels(text: str) -> int:
    value = int(text) if text.strip().isdigit() else 0
    if not 1 <= value <= 1 << 15:
        raise ValueError(f"the number of levels must be an integer in [1, 32768], got {text}")
    return value


_PARAMETERS: dict[str, tuple[Callable[[str], float | int], str]] = {
    "top-k": (_fraction, "FRACTION"), "random-k": (_fraction, "FRACTION"),
    "qsgd": (_levels, "LEVELS"),
}
COMPRESSOR_FORMS = ("none", *(f"{name}:{arg}" for name, (_, arg) in _PARAMETERS.items()))
"""The accepted forms of a spec."""


def parse_compress_spec(spec: str) -> CompressSpec:
    """The compressor a spec names.

    Raises:
        ValueError: an unknown name, or a missing or bad parameter (the message shows
            the accepted forms).
    """
    name, colon, argument = spec.strip().partition(":")
    if name == "none" and not colon:
        return CompressSpec("none", None)
    entry = _PARAMETERS.get(name)
    if entry is None or not argument:
        raise ValueError(f"compressor {spec!r}: expected one of {', '.join(COMPRESSOR_FORMS)} "
                         "(e.g. top-k:0.01, qsgd:16)")
    try:
        return CompressSpec(name, entry[0](argument))
    except ValueError as exc:
        raise ValueError(f"compressor {spec!r}: {exc}") from None
