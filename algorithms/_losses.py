"""Loss sequences: labelled records in memory, columns in results and summary.json.

Column form (one list per field) keeps a 10,000-node summary small and is read by
position-free name: ``{"iteration": [0, 10, 20], "seconds": [...], "loss": [...]}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple


class LossRecord(NamedTuple):
    """One loss evaluation: after ``iteration`` iterations (0: the initial model),
    ``seconds`` since the node's run started."""

    iteration: int
    seconds: float
    loss: float


def loss_columns(records: Iterable[LossRecord]) -> dict[str, list[Any]]:
    """A loss sequence in column form, as results and summary.json hold it:
    ``{"iteration": [...], "seconds": [...], "loss": [...]}`` (compact at 10,000 nodes)."""
    rows = list(records)
    return {field: [getattr(row, field) for row in rows] for field in LossRecord._fields}


def loss_records(columns: Mapping[str, Any]) -> list[LossRecord]:
    """The records of a column-form loss sequence (``loss_columns``).

    Raises:
        ValueError: ``columns`` is not a map of three equally long lists
            (iteration, seconds, loss).
    """
    try:
        iterations, seconds, losses = (list(columns[field]) for field in LossRecord._fields)
    except (KeyError, TypeError):
        raise ValueError(f"a loss sequence must map {list(LossRecord._fields)} to lists, got "
                         f"{columns!r:.100}") from None
    if not len(iterations) == len(seconds) == len(losses):
        raise ValueError(f"a loss sequence's columns differ in length: {len(iterations)} "
                         f"iterations, {len(seconds)} seconds, {len(losses)} losses")
    return [LossRecord(int(i), float(s), float(loss))
            for i, s, loss in zip(iterations, seconds, losses, strict=True)]
