"""Bytes on the wire: what each node sent as its transport counted them (frames written
over TCP, encoded sizes in memory), and the ``--compress`` option.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from peerflow.algorithms import parse_compress_spec

from ._errors import JobError


def bytes_sent(executors: Mapping[str, Any]) -> dict[str, int]:
    """Each node's bytes sent during its run (those whose transport counted them): the
    last of a learning node's ``bytes_sequence``, an averaging node's ``bytes_sent``."""
    counted = {node: (ex.bytes_sequence[-1] if getattr(ex, "bytes_sequence", None)
                      else getattr(ex, "bytes_sent", 0)) for node, ex in executors.items()}
    return {node: int(count) for node, count in counted.items() if count}


def traffic_metrics(executors: Mapping[str, Any]) -> dict[str, float]:
    """The mean bytes a node sent and the total over all nodes (empty if not counted)."""
    sent = list(bytes_sent(executors).values())
    if not sent:
        return {}
    return {"bytes_sent_per_node": float(np.mean(sent)), "bytes_sent_total": float(sum(sent))}


def compress_extra(algorithm: str, keys: Sequence[str], spec: str | None) -> dict[str, str]:
    """The ``extra`` entry ``--compress SPEC`` sets for ``algorithm`` (nothing if None).

    Args:
        algorithm: the command's algorithm.
        keys: the ``extra`` keys it reads.
        spec: the option's value.

    Raises:
        JobError: the algorithm sends uncompressed payloads, or the spec is bad.
    """
    if spec is None:
        return {}
    if "compress" not in keys:
        raise JobError(f"--compress: {algorithm} sends its values uncompressed; compressed "
                       "gossip needs error compensation, which choco-sgd (compressed "
                       "differences) and dgd (error feedback) have: "
                       f"peerflow simulate choco-sgd --compress {spec}")
    try:
        parse_compress_spec(spec)
    except ValueError as exc:
        raise JobError(f"--compress: {exc}") from None
    return {"compress": spec}

