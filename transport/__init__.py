"""peerflow.transport: envelopes, their codec, and the transports that carry them."""

from __future__ import annotations

from ._address import join_address, split_address
from ._codec import DEFAULT_MAX_FRAME, decode, encode, encode_bytes, frame_size
from ._envelope import KINDS, PROTOCOL_VERSION, Envelope, Kind, new_message_id
from ._frames import FrameDecoder, framed
from ._guard import Guard, OverLimit
from ._handshake import MAX_HANDSHAKE, Gate, HandshakeError, Hello, Welcome, admit
from ._loop import loop_options, run_loop
from ._project import Project, ProvisionError, load_project, project_from_dict
from ._provision import provision
from ._select import Address, create_transport, parse_address
from ._sparse import QuantizedTensor, SparseTensor
from ._startup import STARTUP_FOLDER, StartupKit
from .abc import (
    DeadLetter,
    DecodeError,
    Deliver,
    NetworkTransport,
    PeerLost,
    Transport,
    TransportError,
    UnknownEndpoint,
)
from .emulated import EmulatedTransport, Link, LinkStats
from .memory import MemoryTransport
from .tcp import FrameTooLarge, PeerCongested, TcpTransport
from .tls import (
    AGENT_SERVER_ROLE,
    TRAINER_ROLE,
    TlsConfig,
    TlsConfigError,
    certificate_subject,
)

__all__ = [
    "AGENT_SERVER_ROLE",
    "DEFAULT_MAX_FRAME",
    "KINDS",
    "MAX_HANDSHAKE",
    "PROTOCOL_VERSION",
    "Address",
    "DeadLetter",
    "DecodeError",
    "Deliver",
    "EmulatedTransport",
    "Envelope",
    "FrameDecoder",
    "FrameTooLarge",
    "Guard",
    "Gate",
    "HandshakeError",
    "Hello",
    "Kind",
    "Link",
    "LinkStats",
    "MemoryTransport",
    "NetworkTransport",
    "OverLimit",
    "PeerCongested",
    "PeerLost",
    "QuantizedTensor",
    "Project",
    "ProvisionError",
    "STARTUP_FOLDER",
    "SparseTensor",
    "StartupKit",
    "TRAINER_ROLE",
    "TcpTransport",
    "TlsConfig",
    "TlsConfigError",
    "Transport",
    "TransportError",
    "UnknownEndpoint",
    "Welcome",
    "admit",
    "certificate_subject",
    "create_transport",
    "decode",
    "encode",
    "encode_bytes",
    "frame_size",
    "framed",
    "join_address",
    "load_project",
    "loop_options",
    "new_message_id",
    "parse_address",
    "project_from_dict",
    "provision",
    "run_loop",
    "split_address",
]
