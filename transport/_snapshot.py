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

_IMMUTABLE: Final = frozenset({float, int, str, bytes, bool, type(None), complex})


def snapshot(value: Any) -> Any:
    """Return ``value`` with its mutable buffers copied; immutable parts are shared."""
    if type(value) in _IMMUTABLE:
        return value
    if isinstance(value, dict):
        return {key: snapshot(item) for key, item in value.items()}
    if isinstance(value, list):
        return [snapshot(item) for item in value]
    if isinstance(value, tuple):
        return tuple(snapshot(item) for item in value)
    if isinstance(value, np.ndarray):
        return value if _frozen(value) else value.copy()
    if isinstance(value, bytearray):
        return bytes(value)
    if is_torch_tensor(value):
        return value.detach().clone()  # detached, as the codec sends it
    return value


def _frozen(array: np.ndarray) -> bool:
    """True if no one can change the array's bytes: read-only down to its memory's owner,
    which is itself read-only or immutable ``bytes``."""
    base: object = array
    while isinstance(base, np.ndarray | memoryview):
        writable = not base.readonly if isinstance(base, memoryview) else base.flags.writeable
        if writable:
            return False
        owner = base.obj if isinstance(base, memoryview) else base.base
        if owner is None:
            return True
        base = owner
    return type(base) is bytes


def is_torch_tensor(obj: object) -> bool:
    """True for a torch tensor; imports torch only for an object of a torch type."""
    module = type(obj).__module__
    if module != "torch" and not module.startswith("torch."):
        return False
    import torch

    return isinstance(obj, torch.Tensor)
