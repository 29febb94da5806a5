"""What a task and its result are: NVFlare's client definitions (``nvflare.client.defs``).

A trainer written for NVFlare's FlareAgent imports ``RC``, ``MetaKey``, ``Task`` and
``TaskResult``; here they have NVFlare's names, fields and values, so only its import
lines change. Two differences, both deliberate: ``RC`` is a ``StrEnum`` (its members are
the same strings), and ``Task`` and ``TaskResult`` take ``data`` before ``meta`` (NVFlare
puts ``meta`` first; the seed's trainer and most code pass them by keyword), and
``TaskResult`` keeps a falsy ``data`` (NVFlare replaces ``0`` or ``[]`` by ``{}``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class RC(enum.StrEnum):
    """Return codes of a task result: NVFlare's ``ReturnCode``, names and values.

    Any code other than ``RC.OK`` aborts the run, naming the agent and the code.
    """

    OK = "OK"
    BAD_PEER_CONTEXT = "BAD_PEER_CONTEXT"
    BAD_REQUEST_DATA = "BAD_REQUEST_DATA"
    BAD_TASK_DATA = "BAD_TASK_DATA"
    COMMUNICATION_ERROR = "COMMUNICATION_ERROR"
    TIMEOUT = "TIMEOUT"
    ERROR = "ERROR"
    EXECUTION_EXCEPTION = "EXECUTION_EXCEPTION"
    EXECUTION_RESULT_ERROR = "EXECUTION_RESULT_ERROR"
    HANDLER_EXCEPTION = "HANDLER_EXCEPTION"
    MISSING_PEER_CONTEXT = "MISSING_PEER_CONTEXT"
    RUN_MISMATCH = "RUN_MISMATCH"
    TASK_ABORTED = "TASK_ABORTED"
    TASK_DATA_FILTER_ERROR = "TASK_DATA_FILTER_ERROR"
    TASK_RESULT_FILTER_ERROR = "TASK_RESULT_FILTER_ERROR"
    TASK_UNKNOWN = "TASK_UNKNOWN"
    TASK_UNSUPPORTED = "TASK_UNSUPPORTED"
    TOPIC_UNKNOWN = "TOPIC_UNKNOWN"
    MODEL_UNRECOGNIZED = "MODEL_UNRECOGNIZED"
    VALIDATE_TYPE_UNKNOWN = "VALIDATE_TYPE_UNKNOWN"
    EMPTY_RESULT = "EMPTY_RESULT"
    UNSAFE_JOB = "UNSAFE_JOB"
    EARLY_TERMINATION = "EARLY_TERMINATION"
    SERVER_NOT_READY = "SERVER_NOT_READY"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"


class MetaKey:
    """Keys of a task's or a result's ``meta``: NVFlare's ``MetaKey``, plain strings.

    A federated-averaging workflow weights each result by its
    ``NUM_STEPS_CURRENT_ROUND``.
    """

    CURRENT_ROUND = "current_round"
    TOTAL_ROUND = "total_round"
    DATA_KIND = "data_kind"
    NUM_STEPS_CURRENT_ROUND = "NUM_STEPS_CURRENT_ROUND"
    PROCESSED_ALGORITHM = "PROCESSED_ALGORITHM"
    PROCESSED_KEYS = "PROCESSED_KEYS"
    INITIAL_METRICS = "initial_metrics"
    FILTER_HISTORY = "filter_history"


@dataclass(frozen=True, slots=True)
class Task:
    """A task handed to the agent.

    Attributes:
        task_name: what to do ("train", say).
        task_id: this task's unique id.
        data: what to do it on (the model's weights, say).
        meta: anything the node tells about it (``MetaKey.CURRENT_ROUND``...).
    """

    task_name: str
    task_id: str
    data: Any
    meta: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        """``'name id'``, as NVFlare prints a task (never its data, which may be large)."""
        return f"'{self.task_name} {self.task_id}'"


@dataclass(frozen=True, slots=True)
class TaskResult:
    """The result of a task, for ``submit_result``.

    Attributes:
        data: the result (the new weights, say).
        meta: anything to tell about it (``MetaKey.NUM_STEPS_CURRENT_ROUND``...).
        return_code: ``RC.OK``, or any other code to abort the run.

    Raises:
        TypeError: ``meta`` is not a dict (None becomes ``{}``), or ``return_code``
            is not a string.
    """

    data: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    return_code: str = RC.OK

    def __post_init__(self) -> None:
        if self.meta is None:
            object.__setattr__(self, "meta", {})
        if not isinstance(self.meta, dict):
            raise TypeError(f"TaskResult meta must be a dict, got {type(self.meta).__name__}")
        if not isinstance(self.return_code, str):
            raise TypeError(f"TaskResult return_code must be a str (an RC), got "
                            f"{type(self.return_code).__name__}")
