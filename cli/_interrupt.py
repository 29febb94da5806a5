"""Ctrl-C and SIGTERM: stop the run at once, say so in one line, exit 130.

While a command's event loop runs, SIGINT and SIGTERM cancel it (after
``on_signal``, which tells every node to stop exchanging: see
``SyncAlgorithmExecutor.stop``) and ``run_async`` raises ``Interrupted``. Outside
the loop (building a network, waiting for child processes) both raise
``Interrupted`` where the program is (typer would turn a KeyboardInterrupt into a
silent exit), so the ``finally`` blocks run: no child process outlives the command.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, NoReturn, TypeVar

import anyio

from peerflow.transport import run_loop

T = TypeVar("T")

SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_CODE = 130
"""What an interrupted command exits with (128 + SIGINT, as shells report Ctrl-C)."""


class Interrupted(Exception):
    """A signal stopped the command.

    Attributes:
        signal: the signal's name, e.g. "SIGINT".
    """

    def __init__(self, signal_name: str) -> None:
        super().__init__(f"interrupted by {signal_name}")
        self.signal = signal_name


def run_async(main: Callable[[], Awaitable[T]], on_signal: Callable[[], None] | None = None
              ) -> T:
    """Run ``main`` in a fresh event loop (uvloop when installed) until it ends or a signal.

    Raises:
        Interrupted: SIGINT or SIGTERM came first; ``main`` was cancelled.
    """
    if not _in_main_thread():  # signals reach the main thread only
        return run_loop(main)
    before = {number: signal.getsignal(number) for number in SIGNALS}
    try:
        return run_loop(_until_signal, main, on_signal)
    finally:  # the loop resets its signals to the defaults when it closes
        for number, handler in before.items():
            if handler is not None:  # None: not installed from Python
                signal.signal(number, handler)


async def _until_signal(main: Callable[[], Awaitable[T]],
                        on_signal: Callable[[], None] | None) -> T:
    received: list[str] = []
    outcome: list[T] = []
    failure: list[Exception] = []
    async with anyio.create_task_group() as group:
        await group.start(_watch, group.cancel_scope, received, on_signal)
        try:
            outcome.append(await main())
        except Exception as exc:  # raised below, out of the task group: as it is, not
            failure.append(exc)   # wrapped in an exception group
        group.cancel_scope.cancel()
    if received:
        raise Interrupted(received[0])
    if failure:
        raise failure[0]
    return outcome[0]


async def _watch(scope: anyio.CancelScope, received: list[str],
                 on_signal: Callable[[], None] | None, *, task_status: Any) -> None:
    with anyio.open_signal_receiver(*SIGNALS) as signals:
        task_status.started()
        async for number in signals:
            received.append(signal.Signals(number).name)
            if on_signal is not None:
                on_signal()
            scope.cancel()
            return


def end_process(code: int) -> NoReturn:
    """Exit now with ``code``, without freeing the run's objects one by one.

    For an interrupted in-process run, once its summary is written: at 10,000 nodes,
    tearing down their state took longer than stopping them. Logging and standard
    streams are flushed first; the command has stopped every process it started.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise ``Interrupted``."""
    def interrupt(number: int, frame: FrameType | None) -> None:
        raise Interrupted(signal.Signals(number).name)

    if not _in_main_thread():
        yield
        return
    before = {number: signal.signal(number, interrupt) for number in SIGNALS}
    try:
        yield
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
