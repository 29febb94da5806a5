"""What a TCP transport lets in: who may connect, what each may send, what frames may hold.

The transport authenticates names (a certificate, or a join secret on plain TCP);
what a name may do is the deployment's to say, since only it knows the roles
(controller, node, admin). It says so with a ``Guard``: ``connects`` is asked at
the handshake, ``sends`` for every envelope that arrives, with the name the
connection is bound to. A refused envelope is dropped and logged.

``ReadLimits`` bound what connections hold for frames not yet whole: bytes
across all of a transport's connections, and progress: an unfinished frame may
take ``stall_grace`` seconds, then must average ``min_rate`` bytes a second
since its first byte. A connection between frames is never idle, however long
the algorithm computes; only a frame that stops arriving is.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ._envelope import Envelope
from .abc import TransportError

DEFAULT_STALL_GRACE: Final = 30.0
DEFAULT_MIN_RATE: Final = 16 << 10


class OverLimit(TransportError):
    """A connection went over a ``ReadLimits`` bound (it is dropped)."""


def _anyone(name: str) -> bool:
    return True


def _anything(peer: str, envelope: Envelope) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class Guard:
    """Who may connect, and what each may send.

    Attributes:
        connects: whether a peer of this name may connect at all.
        sends: None if the envelope may come from this peer, else why not.
    """

    connects: Callable[[str], bool] = _anyone
    sends: Callable[[str, Envelope], str | None] = _anything


OPEN: Final = Guard()
"""Any name that passes the handshake, sending anything."""


@dataclass(slots=True)
class ReadLimits:
    """Bounds on unfinished frames, shared by a transport's connections.

    Attributes:
        max_buffered: bytes of unfinished frames held across all connections.
        stall_grace: seconds an unfinished frame may take before it must keep up.
        min_rate: bytes a second an unfinished frame must average after the grace.
        held: bytes of unfinished frames held now.
    """

    max_buffered: int
    stall_grace: float = DEFAULT_STALL_GRACE
    min_rate: float = DEFAULT_MIN_RATE
    held: int = 0

    def stalled(self, held: int, elapsed: float) -> str | None:
        """Why a frame with ``held`` bytes after ``elapsed`` seconds is stalled, if it is."""
        if elapsed <= self.stall_grace or held >= self.min_rate * (elapsed - self.stall_grace):
            return None
        return (f"an unfinished frame stalled: {held} bytes in {elapsed:.1f}s, expected "
                f"{self.min_rate:g} bytes/s after {self.stall_grace:g}s")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an IP address) is this machine's loopback (IPv4-mapped too)."""
    try:
        address = ipaddress.ip_address(host.strip("[]").partition("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))
