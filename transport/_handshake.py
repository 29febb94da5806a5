"""The connection handshake, sans-IO: who is on the other end, and in which run.

The dialer writes one hello frame and waits; the acceptor answers with one
welcome or refuse frame. Only then do envelope frames flow, so neither side ever
reads past the handshake. Handshake frames use the same u32 length prefix as
envelopes but are small msgpack maps, at most ``MAX_HANDSHAKE`` bytes::

    hello:   {"peerflow": "hello",   "version": 1, "node": str, "run": str | None,
              "listen": str | None, "secret": str | None, "settings": {str: scalar}}
    welcome: {"peerflow": "welcome", "version": 1, "node": str, "run": str,
              "settings": {str: scalar}}
    refuse:  {"peerflow": "refuse",  "version": 1, "reason": str, "retry": bool}

``settings`` is what a protocol built on this handshake adds (the agent link
carries its agent's task and its heartbeat settings there): at most
``MAX_SETTINGS`` entries, each a short name and a str, int, float, bool or None.

A hello whose run is None comes from a process that has not joined a run yet
(a node registering with its controller, or an admin client); only an acceptor
that admits joiners takes it, and the dialer adopts the run of the welcome.
With TLS the name in the hello must be the name in the peer's certificate.
Without TLS a name is only a claim: an acceptor given a join secret admits only
hellos that carry it (plain TCP without a secret admits loopback peers only, see
``tcp``). Either way the acceptor admits only names its guard lets connect, and
one connection per name: a second one while the first is up is refused (with
``retry``: the first may be on its way out).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import msgpack

from ._envelope import PROTOCOL_VERSION
from ._frames import frame_prefix
from .abc import TransportError

MAX_HANDSHAKE: Final = 4096
"""Largest handshake frame body accepted, in bytes."""
MAX_SETTINGS: Final = 12
"""Most entries a hello's or welcome's ``settings`` may hold."""

_MAX_NAME: Final = 256
_SCALARS: Final = (str, int, float, bool, type(None))

Settings = Mapping[str, str | int | float | bool | None]
"""The extra map a hello or welcome carries for the protocol built on the handshake."""


class HandshakeError(TransportError):
    """The handshake failed: malformed, refused, or bound to another run or name.

    Attributes:
        retry: whether dialing again later may succeed (e.g. the peer has not joined yet).
        refusal: the peer's reason, when the peer refused (None: failed on this side).
    """

    def __init__(self, message: str, *, retry: bool = False,
                 refusal: str | None = None) -> None:
        super().__init__(message)
        self.retry, self.refusal = retry, refusal

    def frame(self) -> bytes:
        """This refusal as a refuse frame, for the dialer."""
        return _pack({"peerflow": "refuse", "reason": str(self), "retry": self.retry})


@dataclass(frozen=True, slots=True)
class Hello:
    """What a dialer says about itself: its name, its run (None: joining), where it
    listens, the run's join secret, and the settings of the protocol on top."""

    node: str
    run: str | None
    listen: str | None = None
    secret: str | None = field(default=None, repr=False)
    settings: Settings = field(default_factory=dict)

    def frame(self) -> bytes:
        """This hello as a length-prefixed frame.

        Raises:
            HandshakeError: a name or a setting is not one the handshake carries.
        """
        _check_settings(self.settings)
        return _pack({"peerflow": "hello", "node": self.node, "run": self.run,
                      "listen": self.listen, "secret": self.secret,
                      "settings": dict(self.settings)})

    @classmethod
    def parse(cls, body: bytes | bytearray | memoryview) -> Hello:
        """Read a dialer's hello frame body.

        Raises:
            HandshakeError: the frame is not a well-formed hello of this protocol version.
        """
        fields = _unpack(body, "hello")
        node, run, listen = fields.get("node"), fields.get("run"), fields.get("listen")
        secret = fields.get("secret")
        _check_name(node, "node")
        if run is not None:
            _check_name(run, "run")
        if listen is not None and (type(listen) is not str or len(listen) > _MAX_NAME):
            raise HandshakeError(f"hello field 'listen' expected an address, got {listen!r:.80}")
        if secret is not None:
            _check_name(secret, "secret")
        return cls(node, run, listen, secret, _check_settings(fields.get("settings", {})))


@dataclass(frozen=True, slots=True)
class Welcome:
    """The acceptor's answer to a hello it admits: its name, the run the connection is
    bound to, and the settings of the protocol on top."""

    node: str
    run: str
    settings: Settings = field(default_factory=dict)

    def frame(self) -> bytes:
        """This welcome as a length-prefixed frame.

        Raises:
            HandshakeError: a setting is not one the handshake carries.
        """
        _check_settings(self.settings)
        return _pack({"peerflow": "welcome", "node": self.node, "run": self.run,
                      "settings": dict(self.settings)})

    @classmethod
    def parse(cls, body: bytes | bytearray | memoryview) -> Welcome:
        """Read the acceptor's answer to a hello.

        Raises:
            HandshakeError: the peer refused (``retry`` tells whether to try again later)
                or the answer is malformed.
        """
        fields = _unpack(body, "welcome", "refuse")
        if fields["peerflow"] == "refuse":
            reason = f"{fields.get('reason')!s:.300}"
            raise HandshakeError(f"refused by peer: {reason}", retry=fields.get("retry") is True,
                                 refusal=reason)
        node, run = fields.get("node"), fields.get("run")
        _check_name(node, "node")
        _check_name(run, "run")
        return cls(node, run, _check_settings(fields.get("settings", {})))


def check_size(size: int) -> None:
    """Refuse a handshake frame length before reading its body.

    Raises:
        HandshakeError: the length is over ``MAX_HANDSHAKE``.
    """
    if size > MAX_HANDSHAKE:
        raise HandshakeError(f"handshake frame of {size} bytes is over the limit of "
                             f"{MAX_HANDSHAKE} bytes")


@dataclass(frozen=True, slots=True)
class Gate:
    """What an acceptor checks a hello against.

    Attributes:
        run: this side's run id (None before it joined one).
        secret: the join secret a hello must carry (None: none asked).
        joiner: whether a dialer of this name may join without knowing the run.
        connects: whether a dialer of this name may connect at all.
        connected: whether a connection under this name is up already.
        peer: what a dialer is called in refusals ("node", "agent"...).
    """

    run: str | None
    secret: str | None
    joiner: Callable[[str], bool]
    connects: Callable[[str], bool]
    connected: Callable[[str], bool]
    peer: str = "node"


def admit(hello: Hello, gate: Gate, identity: str | None) -> str:
    """Decide whether to accept a hello; return the run the connection is bound to.

    Args:
        hello: what the dialer said.
        gate: what this side admits.
        identity: the name in the dialer's TLS certificate (None: not checked here).

    Raises:
        HandshakeError: the hello names another identity or run, lacks the secret, names
            someone who may not connect, or someone already connected (``retry``).
    """
    who = f"{gate.peer} {hello.node!r}"
    if identity is not None and hello.node != identity:
        raise HandshakeError(f"hello names {who} but the certificate names {identity!r}")
    if gate.secret is not None and not hmac.compare_digest(
            (hello.secret or "").encode(), gate.secret.encode()):
        raise HandshakeError(f"{who} did not give this run's join secret")
    if not gate.connects(hello.node):
        raise HandshakeError(f"{who} may not connect here")
    if gate.run is None:
        raise HandshakeError("this node has not joined a run yet", retry=True)
    if hello.run is None and not gate.joiner(hello.node):
        raise HandshakeError(f"{who} may not join run {gate.run!r}")
    if hello.run is not None and hello.run != gate.run:
        raise HandshakeError(f"connection for run {hello.run!r} refused: this is run "
                             f"{gate.run!r}")
    if gate.connected(hello.node):
        raise HandshakeError(f"{who} is connected already", retry=True)
    return gate.run


def _pack(message: dict[str, Any]) -> bytes:
    body = msgpack.packb({"version": PROTOCOL_VERSION, **message}, use_bin_type=True)
    check_size(len(body))
    return frame_prefix(len(body)) + body


def _unpack(body: bytes | bytearray | memoryview, *kinds: str) -> dict[str, Any]:
    check_size(len(body))
    try:
        fields = msgpack.unpackb(body, raw=False, max_str_len=MAX_HANDSHAKE,
                                 max_bin_len=0, max_array_len=0, max_map_len=16)
    except Exception as exc:  # msgpack raises many types for garbage
        raise HandshakeError(f"handshake frame is not valid msgpack: {exc}") from exc
    if type(fields) is not dict or fields.get("peerflow") not in kinds:
        raise HandshakeError(f"expected a peerflow {' or '.join(kinds)} frame, got "
                             f"{fields!r:.80}")
    if fields.get("version") != PROTOCOL_VERSION:
        raise HandshakeError(f"protocol version {fields.get('version')!r} is not supported "
                             f"(expected {PROTOCOL_VERSION})")
    return fields


def _check_name(value: object, what: str) -> None:
    if type(value) is not str or not value or len(value) > _MAX_NAME:
        raise HandshakeError(f"handshake field {what!r} expected a non-empty name, got "
                             f"{value!r:.80}")


def _check_settings(settings: object) -> Settings:
    if not isinstance(settings, Mapping) or len(settings) > MAX_SETTINGS:
        raise HandshakeError(f"handshake settings expected a map of at most {MAX_SETTINGS} "
                             f"entries, got {settings!r:.80}")
    for key, value in settings.items():
        _check_name(key, "settings key")
        if not isinstance(value, _SCALARS) or (type(value) is str and len(value) > _MAX_NAME):
            raise HandshakeError(f"handshake setting {key!r} expected a str, number, bool or "
                                 f"None, got {value!r:.80}")
    return settings
