"""A process's own host actor: what a node process and a Ray shard share."""

from __future__ import annotations

from typing import Any

import anyio

from peerflow.transport import Envelope

from ._actor import Actor
from ._controller import CONTROLLER_NAME


class Host(Actor):
    """A process's own actor beside its executors: takes tasks from the controller only,
    and ends (``done``, with an ``outcome``) on ``finish`` or when the controller is lost."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.outcome: dict[str, Any] = {}
        self.done = anyio.Event()

    def check_sender(self, envelope: Envelope) -> None:
        """Raises: ValueError: the task does not come from the controller."""
        if envelope.sender.partition("/")[0] != CONTROLLER_NAME:
            raise ValueError(f"host {self.name!r} takes tasks from {CONTROLLER_NAME!r} "
                             f"only, not from {envelope.sender!r}")

    def finish(self, outcome: dict[str, Any]) -> None:
        if not self.done.is_set():
            self.outcome = outcome
            self.done.set()

    def on_peer_lost(self, peer: str, reason: str) -> None:
        if peer == CONTROLLER_NAME:
            self.finish({"status": "aborted", "reason": f"lost the controller: {reason}"})
