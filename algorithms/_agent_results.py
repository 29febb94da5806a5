"""Checks of what a learning agent returns: names, shapes, dtypes and finite values.

An agent is another program, so its results are input to check, not values to
trust: a gradient of the wrong shape would broadcast silently, a NaN would spread
to every neighbour, a float64 gradient would turn a float32 model into float64.
Each is refused, float64 for float32 included (a cast would hide an agent that
trains another model than its node thinks; the agent casts if it means to), and
the run aborts naming the agent, its node and the field.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from peerflow.agents import AgentResultError

from ._steps import Params

_LOSSES = ("train", "test", "val", "accuracy")


def check_init_params(where: str, params: Any) -> Params:
    """Return the agent's initial parameters: floating tensors by name, all finite.

    Raises:
        AgentResultError: something else came; the message names the field.
    """
    if not isinstance(params, dict) or not params:
        raise _refused(where, "init.params", "a tensor per parameter name", _kind(params))
    for name, value in params.items():
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise _refused(where, f"init.params.{name}", "a floating-point tensor",
                           _kind(value))
        _check_finite(where, f"init.params.{name}", value)
    return params


def check_params(where: str, field: str, got: Any, spec: Params) -> Params:
    """Return ``got`` if it holds a tensor per name of ``spec``, of its shape and dtype,
    all finite.

    Raises:
        AgentResultError: the first field that differs, with what was expected and what came.
    """
    if not isinstance(got, dict) or got.keys() != spec.keys():
        names = sorted(got) if isinstance(got, dict) else _kind(got)
        raise _refused(where, field, f"tensors named {sorted(spec)}", str(names))
    for name, want in spec.items():
        value = got[name]
        if (not isinstance(value, torch.Tensor) or value.shape != want.shape
                or value.dtype != want.dtype):
            raise _refused(where, f"{field}.{name}", _kind(want), _kind(value))
        _check_finite(where, f"{field}.{name}", value)
    return got


def check_losses(where: str, losses: Any) -> dict[str, float]:
    """Return the agent's evaluation: a finite float "train" loss, and optionally finite
    "test" and "val" losses and an "accuracy" in [0, 1].

    Raises:
        AgentResultError: a field is missing, not a float, not finite or out of range.
    """
    if not isinstance(losses, dict) or "train" not in losses:
        raise _refused(where, "evaluate", "{train, test?, val?, accuracy?}", _kind(losses))
    for key in _LOSSES:
        value = losses.get(key)
        if value is None and key != "train":
            continue
        if isinstance(value, bool) or not isinstance(value, float) or not math.isfinite(value):
            raise _refused(where, f"evaluate.{key}", "a finite float", repr(value))
        if key == "accuracy" and not 0.0 <= value <= 1.0:
            raise _refused(where, "evaluate.accuracy", "a float in [0, 1]", repr(value))
    return losses


def _check_finite(where: str, field: str, value: torch.Tensor) -> None:
    finite = torch.isfinite(value)
    if not bool(finite.all()):
        bad = value[~finite]
        raise _refused(where, field, "finite values",
                       f"{int(bad.isnan().sum())} NaN and {int(bad.isinf().sum())} infinite "
                       f"of {value.numel()}")


def _kind(value: Any) -> str:
    """A value as the messages show it: "[32, 2] float32" for a tensor, else its type."""
    if isinstance(value, torch.Tensor):
        return f"{list(value.shape)} {str(value.dtype).removeprefix('torch.')}"
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is not None and dtype is not None:  # a numpy array, say
        return f"{type(value).__name__} {list(shape)} {dtype}"
    return type(value).__name__


def _refused(where: str, field: str, expected: str, got: str) -> AgentResultError:
    prefix = "shape " if expected[:1] == "[" else ""
    return AgentResultError(f"{where} result field {field!r}: expected {prefix}{expected}, "
                            f"got {got}")
