"""The per-iteration metrics file of a run: ``metrics.jsonl`` or ``metrics.csv``.

One record per value: ``{"node", "iteration", "seconds", "name", "value"}``, in
JSON Lines (non-finite floats and unknown seconds are ``null``) or CSV with that
header (unknown seconds empty). Records go out series by series: a node's metric
over iterations, then the next. At 10,000 nodes x 1,000 iterations a consensus run
has 20 million records, so lines are formatted in bulk, not by ``json.dumps`` each.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import JobError
from ._metrics import Series

METRICS_FORMATS = ("jsonl", "csv", "none")
"""The choices of ``--metrics-format``: ``none`` writes no metrics file."""
FIELDS = ("node", "iteration", "seconds", "name", "value")


def metrics_path(out: Path, fmt: str) -> Path | None:
    """Where a run in ``out`` writes its metrics in ``fmt`` (None for ``none``).

    Raises:
        JobError: ``fmt`` is not one of ``METRICS_FORMATS``.
    """
    if fmt not in METRICS_FORMATS:
        raise JobError(f"--metrics-format must be one of {', '.join(METRICS_FORMATS)}, "
                       f"got {fmt!r}")
    return None if fmt == "none" else out / f"metrics.{fmt}"


def write_metrics_file(path: Path, series: Iterable[Series]) -> int:
    """Write every record of ``series`` to ``path`` (``.jsonl`` or ``.csv``); the count."""
    count = 0
    with path.open("w", newline="") as file:
        if path.suffix == ".csv":
            writer = csv.writer(file)
            writer.writerow(FIELDS)
            for s in series:
                count += len(s.steps)
                writer.writerows(zip(_repeat(s.node, s), _ints(s.steps), _csv_seconds(s),
                                     _repeat(s.name, s), _csv_values(s.values), strict=True))
        else:
            for s in series:
                count += len(s.steps)
                file.writelines(_json_lines(s))
    return count


def _json_lines(s: Series) -> Iterator[str]:
    head = f'{{"node":{json.dumps(s.node)},"iteration":'
    name = f',"name":{json.dumps(s.name)},"value":'
    seconds = _json_numbers(s.seconds) if s.seconds is not None else _repeat("null", s)
    return (f'{head}{t},"seconds":{sec}{name}{v}}}\n' for t, sec, v in
            zip(_ints(s.steps), seconds, _json_numbers(s.values), strict=True))


def _json_numbers(values: Sequence[Any]) -> list[str]:
    """Values as JSON texts: float arrays in bulk (repr is JSON for finite floats)."""
    if (isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in "fiu"
            and (values.dtype.kind != "f" or np.isfinite(values).all())):
        return list(map(repr, values.tolist()))
    return [_json_value(v) for v in _plain(values)]


def _json_value(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "null"
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return json.dumps(str(value))


def _csv_seconds(s: Series) -> Iterable[Any]:
    return _repeat("", s) if s.seconds is None else _plain(s.seconds)


def _csv_values(values: Sequence[Any]) -> Iterable[Any]:
    return (v if isinstance(v, int | float | str) else json.dumps(v, default=str)
            for v in _plain(values))


def _plain(values: Sequence[Any]) -> list[Any]:
    return values.tolist() if isinstance(values, np.ndarray) else list(values)


def _ints(steps: Sequence[int]) -> list[int]:
    return [int(t) for t in _plain(steps)]


def _repeat(text: str, s: Series) -> list[str]:
    return [text] * len(s.steps)
