"""Choosing a transport by name or address: ``memory``, ``tcp[://host:port]``, ``tls[://...]``.

The one place that knows every concrete transport, so that ``actors`` can build
one from a string without importing ``tcp`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ._address import join_address, split_address
from .abc import Transport
from .memory import MemoryTransport
from .tcp import TcpTransport
from .tls import TlsConfig

SCHEMES: Final = ("memory", "tcp", "tls")
DEFAULT_LISTEN: Final = "127.0.0.1:0"


@dataclass(frozen=True, slots=True)
class Address:
    """A parsed transport address: scheme and, for tcp/tls, where to listen."""

    scheme: str
    host: str = ""
    port: int = 0

    @property
    def hostport(self) -> str:
        return join_address(self.host, self.port)

    def __str__(self) -> str:
        return self.scheme if self.scheme == "memory" else f"{self.scheme}://{self.hostport}"


def parse_address(text: str) -> Address:
    """Parse ``memory``, ``tcp``, ``tls``, ``tcp://host:port``, ``tls://host:port``.

    A bare ``tcp`` or ``tls`` listens on an ephemeral loopback port.

    Raises:
        ValueError: unknown scheme or malformed host:port.
    """
    scheme, sep, rest = text.partition("://")
    if scheme not in SCHEMES:
        raise ValueError(f"unknown transport {text!r}; expected memory, tcp, tls, "
                         "tcp://HOST:PORT or tls://HOST:PORT")
    if scheme == "memory":
        if sep:
            raise ValueError(f"the memory transport takes no address: {text!r}")
        return Address("memory")
    host, port = split_address(rest if sep else DEFAULT_LISTEN)
    return Address(scheme, host, port)


def create_transport(spec: str | Address, *, name: str = "", run_id: str | None = None,
                     tls: TlsConfig | str | Path | None = None, strict: bool = False,
                     dial_only: bool = False, **options: Any) -> Transport:
    """Build the transport ``spec`` names (not yet opened: use ``async with``).

    Args:
        spec: an address string (see ``parse_address``) or a parsed ``Address``.
        name: this side's name (tcp/tls).
        run_id: the run to bind connections to (tcp/tls).
        tls: a ``TlsConfig`` or a kit folder (tls only; required for it).
        strict: memory only: run every envelope through the codec.
        dial_only: tcp/tls: open no listener (a client that only dials).
        **options: passed to ``TcpTransport``.

    Raises:
        ValueError: bad spec, or TLS material missing for tls / given for tcp.
        TlsConfigError: the TLS kit cannot be loaded.
    """
    address = parse_address(spec) if isinstance(spec, str) else spec
    if address.scheme == "memory":
        return MemoryTransport(strict=strict)
    if (address.scheme == "tls") != (tls is not None):
        raise ValueError("a tls:// transport needs a TLS kit and a tcp:// one takes none")
    config = tls if tls is None or isinstance(tls, TlsConfig) else TlsConfig.from_dir(tls, name)
    listen = None if dial_only else address.hostport
    return TcpTransport(name, listen, run_id=run_id, tls=config, **options)
