"""The envelope: the one message shape every actor, transport and codec shares."""

from __future__ import annotations

import itertools
import os
from typing import Any, Final, Literal

import msgspec

PROTOCOL_VERSION: Final = 1

Kind = Literal["tell", "ask", "reply", "error", "panic", "abort", "heartbeat"]
KINDS: Final[frozenset[str]] = frozenset(
    {"tell", "ask", "reply", "error", "panic", "abort", "heartbeat"}
)

_prefix = os.urandom(4).hex()
_counter = itertools.count()


def new_message_id() -> str:
    """Return a message id unique within this process and very likely across processes."""
    return f"{_prefix}-{next(_counter)}"


class Envelope(msgspec.Struct):
    """One message between two named actors.

    A msgspec ``Struct`` rather than a dataclass: built in C at a quarter of the cost,
    and two are built per message on a network (by the sender and by the receiver).

    Attributes:
        kind: what the message is (tell, ask, reply, error, panic, abort, heartbeat).
        sender: name of the sending actor.
        recipient: name of the receiving actor.
        topic: what the message is about ("value", "config", "run", ...).
        body: any msgpack value; numpy arrays and torch tensors included.
        iteration: the algorithm iteration the message belongs to, if any.
        run: the run id; envelopes of another run are refused.
        id: the message id.
        reply_to: for reply and error, the id of the ask they answer.
        v: the protocol version.
    """

    kind: Kind
    sender: str
    recipient: str
    topic: str
    body: Any = None
    iteration: int | None = None
    run: str = ""
    id: str = ""
    reply_to: str | None = None
    v: int = PROTOCOL_VERSION
