"""TensorBoard event files of a run: one run folder per node, ``DIR/<node>/``.

NVFlare streams each site's analytics to ``tb_events/<site>/`` with the tag as
logged; here every node's series (``_metrics``) go to ``DIR/<node>/`` under their
names, the network-wide ones to ``DIR/_network/``. ``tensorboard --logdir DIR``
shows them; its "Relative" axis is the seconds where the node kept them.

The files are written with tensorboardX's record writer and protos, after the run
and node by node (one file open at a time: a run may have 10,000 nodes). Its
``SummaryWriter`` is not used: it hands every scalar to a writer thread through a
multiprocessing queue, which costs about ten times more per scalar. All of a node's
values of one iteration go in one event.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import JobError
from ._metrics import Series
from ._output import make_folder

INSTALL = "pip install 'peerflow[tensorboard]'"


def check_tensorboard(folder: Path | None) -> Path | None:
    """Check, before a run, that ``--tensorboard`` can be written: the package is there
    and ``folder`` is (or can be made) a folder.

    Raises:
        JobError: tensorboardX is not installed (the message says how to install it), or
            ``folder`` is not a folder and cannot be created.
    """
    if folder is None:
        return None
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        raise JobError(f"--tensorboard needs the tensorboardX package: {INSTALL}") from None
    make_folder(folder, "--tensorboard")
    return folder


def write_tensorboard(folder: Path, series: Iterable[Series], started: float) -> int:
    """Write every numeric value of ``series`` as scalars, one run folder per node; the
    number of scalars. ``started``: the run's start (Unix time), to which a series'
    seconds are added (without seconds, the time of writing is the event's).
    """
    by_node: dict[str, list[Series]] = {}
    for s in series:
        by_node.setdefault(s.node, []).append(s)
    return sum(_write_node(folder / node, node_series, started)
               for node, node_series in by_node.items())


def _write_node(folder: Path, series: list[Series], started: float) -> int:
    events: dict[int, tuple[float, dict[str, float]]] = {}
    now = time.time()
    for s in series:
        seconds = _floats(s.seconds) if s.seconds is not None else None
        for i, (step, value) in enumerate(zip(np.asarray(s.steps, dtype=np.int64).tolist(),
                                              _floats(s.values), strict=True)):
            if not isinstance(value, float):
                continue  # an agent's text or structure: not a scalar
            wall = now if seconds is None or seconds[i] is None else started + seconds[i]
            events.setdefault(step, (wall, {}))[1][s.name] = value
    _write_events(folder, events)
    return sum(len(values) for _, values in events.values())


def _write_events(folder: Path, events: dict[int, tuple[float, dict[str, float]]]) -> None:
    """One event file, named and begun as TensorBoard expects, an event per step.

    An event is filled in and serialized again for every step with the same tags:
    building protos is what costs (tenfold). tensorboardX's record writer frames
    them; its ``EventsWriter`` is not used, as it syncs the file to disk on close
    (20 ms a node, minutes at 10,000 nodes).
    """
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.proto.summary_pb2 import Summary
    from tensorboardX.record_writer import RecordWriter

    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    writer = RecordWriter(str(folder / f"events.out.tfevents.{int(now)}.{socket.gethostname()}"))
    filled: dict[tuple[str, ...], Any] = {}
    try:
        writer.write(Event(wall_time=now, file_version="brain.Event:2").SerializeToString())
        for step in sorted(events):
            wall, values = events[step]
            tags = tuple(values)
            if tags not in filled:
                filled[tags] = Event(summary=Summary(value=[Summary.Value(tag=t) for t in tags]))
            event = filled[tags]
            event.step, event.wall_time = step, wall
            for slot, value in zip(event.summary.value, values.values(), strict=True):
                slot.simple_value = value
            writer.write(event.SerializeToString())
    finally:
        writer.close()


def _floats(values: Any) -> list[Any]:
    """Numbers as floats (others as they are): what a scalar event takes."""
    plain = values.tolist() if isinstance(values, np.ndarray) else list(values)
    return [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
            for v in plain]
