"""The transport interface: what actors may rely on, whichever transport carries them.

A transport delivers envelopes to named endpoints. Sending never awaits: the
per-message path is a plain call, so an iteration's exchange costs no scheduler
round trip (an awaited send costs more than the rest of a message's way). Each
local endpoint registers a delivery callback; remote endpoints are reached
through whatever the transport knows. What ``send_values`` sends is a snapshot:
a sender may update a sent buffer in place as soon as the call returns.

Two layers: ``Transport`` is what an algorithm's actors need in one process;
``NetworkTransport`` adds what a deployment over processes needs: routes to
named peers, their loss, and who may connect. ``peerflow.transport.testing``
checks any implementation against both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ._envelope import Envelope, new_message_id
from ._snapshot import IMMUTABLE, snapshot

if TYPE_CHECKING:
    from ._guard import Guard

Deliver = Callable[[Envelope], None]
"""Called with each envelope addressed to a local endpoint; must not block."""

DeliverValue = Callable[[str, int, Any], None]
"""Called with (sender, iteration, body) of a value ``send_values`` sends on its topic."""

DeadLetter = Callable[[Envelope, str], None]
"""Called with an envelope that could not be delivered and the reason why."""

PeerLost = Callable[[str, str], None]
"""Called with (peer name, reason) once a watched peer is given up."""


class TransportError(Exception):
    """Base class of the transport layer's own errors."""


class DecodeError(TransportError):
    """A frame or envelope is malformed; the message names what is wrong."""


class UnknownEndpoint(TransportError):
    """An endpoint name is not registered here and no route to it is known."""


class Transport(ABC):
    """Carries envelopes between named endpoints.

    Lifecycle: ``async with transport:`` opens listeners and background tasks;
    leaving the block closes them. Local endpoints register before they receive.
    """

    on_dead_letter: DeadLetter | None = None
    copy_on_send: bool = True
    """Snapshot ``send_values`` bodies; False only for senders that never update a sent
    buffer in place (then in memory the recipients see those updates)."""
    _sent: dict[str, int] | None = None

    def sent_bytes(self, sender: str) -> int:
        """Bytes this transport has sent for the local endpoint ``sender`` so far: the
        frames it wrote (over a network) or encoded (in memory, when it counts); 0 if
        this transport does not count."""
        return 0 if self._sent is None else self._sent.get(sender, 0)

    def count_sent(self, sender: str, nbytes: int) -> None:
        """Add ``nbytes`` sent for ``sender`` to what ``sent_bytes`` reports."""
        if self._sent is None:
            self._sent = {}
        self._sent[sender] = self._sent.get(sender, 0) + nbytes

    @abstractmethod
    def register(self, name: str, deliver: Deliver) -> None:
        """Attach a local endpoint.

        Raises:
            ValueError: the name is already registered.
        """

    @abstractmethod
    def unregister(self, name: str) -> None:
        """Detach a local endpoint; later envelopes to it become dead letters."""

    @abstractmethod
    def send(self, envelope: Envelope) -> None:
        """Deliver or queue ``envelope`` for its recipient without awaiting.

        An envelope that cannot be delivered goes to ``on_dead_letter``. Its body
        goes as it is (in memory, by reference): unlike ``send_values``, no snapshot.

        Raises:
            anyio.ClosedResourceError: the transport is closed.
        """

    def register_values(self, name: str, topic: str, deliver_value: DeliverValue) -> None:
        """Offer a local endpoint's fast path for what ``send_values`` sends it on ``topic``.

        Optional to honour: a transport that ignores it (the default) delivers
        those values as envelopes, to the endpoint's ``deliver``.
        """
        return None  # the default: values travel as envelopes, to ``deliver``

    def send_values(self, sender: str, recipients: Iterable[str], topic: str, iteration: int,
                    body: Any, run: str) -> None:
        """Send one iteration's ``body`` to every recipient as a "tell", without awaiting.

        Every recipient receives ``body`` as it is now, on every transport: unless
        ``copy_on_send`` is False, its mutable buffers (writable numpy arrays, torch
        tensors, bytearrays, in dicts, lists and tuples) are copied once for all
        recipients, so the sender may update them in place as soon as this returns.

        Raises:
            anyio.ClosedResourceError: the transport is closed.
        """
        if self.copy_on_send and type(body) not in IMMUTABLE:  # a scalar skips the call
            body = snapshot(body)
        self._send_values(sender, recipients, topic, iteration, body, run)

    def _send_values(self, sender: str, recipients: Iterable[str], topic: str, iteration: int,
                     body: Any, run: str) -> None:
        """Carry a ``send_values`` body (already a snapshot): one envelope per recipient.

        A transport may override it to skip the envelopes, delivering the same values.
        """
        send = self.send
        for recipient in recipients:
            send(Envelope("tell", sender, recipient, topic, body, iteration, run,
                          new_message_id()))

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @abstractmethod
    async def aclose(self) -> None:
        """Close listeners and connections; idempotent."""

    def dead_letter(self, envelope: Envelope, reason: str) -> None:
        """Hand an undeliverable envelope to the dead-letter callback, if any."""
        if self.on_dead_letter is not None:
            self.on_dead_letter(envelope, reason)


class NetworkTransport(Transport):
    """A ``Transport`` between processes: named peers reached through routes.

    A peer is a remote transport by name; it carries that name's endpoints and
    the sub-names ``name/...``. A connection broken without goodbye is won back
    within ``reconnect_window`` seconds, else the peer is lost: what waits for it
    becomes dead letters and, if it is watched, ``on_peer_lost`` is called.

    Attributes:
        name: this side's name.
        scheme: the address scheme this transport carries ("tcp", "tls").
        run_id: the run connections are bound to (None: adopt the first peer's).
        address: ``host:port`` this side listens on, once open (None: it only dials).
        reconnect_window: seconds to win back a broken connection.
        on_peer_lost: called when a watched peer is lost.
        guard: who may connect and what each may send.
    """

    name: str
    scheme: str
    run_id: str | None
    address: str | None
    reconnect_window: float
    on_peer_lost: PeerLost | None = None
    guard: Guard

    @abstractmethod
    def add_route(self, peer: str, address: str, *, watch: bool = False) -> None:
        """Tell where ``peer`` listens; with ``watch``, losing it calls ``on_peer_lost``.

        Raises:
            ValueError: the address is not ``host:port``.
        """

    @abstractmethod
    def watch(self, peer: str) -> None:
        """Have ``on_peer_lost`` called if ``peer`` is lost (whoever dialed)."""

    @abstractmethod
    async def connect(self, peer: str) -> None:
        """Dial ``peer`` if need be and return once connected.

        Raises:
            TransportError: no route to the peer, or the peer was lost (refused,
                or not reached in time).
        """

    @abstractmethod
    def connections(self) -> list[dict[str, Any]]:
        """Describe every open connection: peer, remote address, TLS, direction."""

    @abstractmethod
    def peer_address(self, peer: str) -> str | None:
        """The remote ``host:port`` of the current connection to ``peer``, if any."""
