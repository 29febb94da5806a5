"""Snapshots of sent values: what a node sends is what its neighbours receive.

In memory a value travels by reference, through an emulated link it waits in a
heap, and over TCP a frame that cannot be written at once waits in a queue
holding views of its tensors: in each case a sender's in-place update after the
send would change what is received. ``Transport.send_values`` therefore copies
the mutable buffers of a body once per send (never per recipient): writable
numpy arrays, torch tensors and bytearrays, nested in dicts, lists and tuples.
Immutable values (numbers, str, bytes, numpy scalars, read-only arrays over
immutable memory) cost nothing; objects the codec cannot carry pass as they are.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

IMMUTABLE: Final = frozenset({float, int, str, bytes, bool, type(None), complex})
"""Types whose values are their own snapshot."""
_VIEWS: Final = (np.ndarray, memoryview)  # what an array's memory may be borrowed from


def snapshot(value: Any) -> Any:
    """Return ``value`` with its mutable buffers copied; immutable parts are shared."""
    kind = type(value)
    if kind in IMMUTABLE:
        return value
    if kind is np.ndarray or isinstance(value, np.ndarray):  # the common body first
        return value if _frozen(value) else value.copy()
    if isinstance(value, dict):
        return {key: snapshot(item) for key, item in value.items()}
    if isinstance(value, list):
        return [snapshot(item) for item in value]
    if isinstance(value, tuple):
        return tuple(snapshot(item) for item in value)
    if isinstance(value, bytearray):
        return bytes(value)
    if is_torch_tensor(value):
        return value.detach().clone()  # detached, as the codec sends it
    return value


def _frozen(array: np.ndarray) -> bool:
    """True if no one can change the array's bytes: read-only down to its memory's owner,
    which is itself read-only or immutable ``bytes``."""
    if array.flags.writeable:
        return False
    base = array.base
    while isinstance(base, _VIEWS):
        read_only = base.readonly if isinstance(base, memoryview) else not base.flags.writeable
        if not read_only:
            return False
        base = base.obj if isinstance(base, memoryview) else base.base
    return base is None or type(base) is bytes


def is_torch_tensor(obj: object) -> bool:
    """True for a torch tensor; imports torch only for an object of a torch type."""
    module = type(obj).__module__
    if module != "torch" and not module.startswith("torch."):
        return False
    import torch

    return isinstance(obj, torch.Tensor)
