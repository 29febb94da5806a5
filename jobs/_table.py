"""A run's summary table: what the console shows of it."""

from __future__ import annotations

from typing import NamedTuple


class Table(NamedTuple):
    """A titled two-column table (metric, value) summing up a run."""

    title: str
    rows: list[tuple[str, str]]
