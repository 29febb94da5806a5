"""peerflow.transport: envelopes, their codec, and the transports that carry them."""

from __future__ import annotations

from ._codec import DEFAULT_MAX_FRAME, decode, encode, encode_bytes
from ._envelope import KINDS, PROTOCOL_VERSION, Envelope, Kind, new_message_id
from .abc import DeadLetter, DecodeError, Deliver, Transport, TransportError, UnknownEndpoint
from .memory import MemoryTransport

__all__ = [
    "DEFAULT_MAX_FRAME",
    "KINDS",
    "PROTOCOL_VERSION",
    "DeadLetter",
    "DecodeError",
    "Deliver",
    "Envelope",
    "Kind",
    "MemoryTransport",
    "Transport",
    "TransportError",
    "UnknownEndpoint",
    "decode",
    "encode",
    "encode_bytes",
    "new_message_id",
]
