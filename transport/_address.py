"""``host:port`` text, both ways: the one parser and formatter of network addresses.

An IPv6 host is written in brackets (``[::1]:80``), as in URLs, so that the
last colon always separates the port.
"""

from __future__ import annotations

from typing import Final

LOOPBACK: Final = "127.0.0.1"


def split_address(address: str, *, default_host: str | None = LOOPBACK) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` too) into the host, unbracketed, and the port.

    Args:
        address: the text to parse.
        default_host: the host of ``:port``; None: a host is required.

    Raises:
        ValueError: no port, a port outside 0..65535, an unmatched bracket, or (with
            ``default_host`` None) no host; the message names what was expected.
    """
    host, sep, port = address.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if not sep or not port.isdigit() or int(port) > 65535 or (
            ("[" in host or "]" in host) and not bracketed):
        raise ValueError(f"address {address!r} is not HOST:PORT (PORT in 0..65535, "
                         "an IPv6 HOST in brackets)")
    host = host[1:-1] if bracketed else host
    if not host and default_host is None:
        raise ValueError(f"address {address!r} is not HOST:PORT: the HOST is missing")
    return host or str(default_host), int(port)


def join_address(host: str, port: int) -> str:
    """``host:port``, the host in brackets if it is IPv6 (the inverse of ``split_address``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def format_sockaddr(address: object) -> str:
    """``host:port`` of a socket address (its first two fields); anything else as text."""
    if isinstance(address, tuple) and len(address) >= 2:
        return join_address(str(address[0]), int(address[1]))
    return str(address)
