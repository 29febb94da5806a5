"""Helpers shared by the transport tests: a set of connected transports of one kind."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from peerflow.transport import (
    Envelope,
    MemoryTransport,
    Project,
    TcpTransport,
    TlsConfig,
    Transport,
    new_message_id,
    provision,
)
from peerflow.transport.testing import RUN

KINDS = ("memory", "tcp", "tls")
NAMES = ("a", "b", "c", "controller", "admin", *(f"site-{i}" for i in range(1, 9)))


def make_kits(folder: Path) -> Path:
    """Provision a project whose participants are every name the tests use."""
    provision(Project("test", "controller", tuple(n for n in NAMES if n not in
                                                  ("controller", "admin")), ("admin",)), folder)
    return folder


def tls_for(kind: str, kits: Path | None, name: str) -> TlsConfig | None:
    if kind != "tls":
        return None
    assert kits is not None
    return TlsConfig.from_dir(kits, name)


@contextlib.asynccontextmanager
async def open_net(kind: str, names: Iterable[str], kits: Path | None = None,
                   **options: Any) -> AsyncIterator[dict[str, Transport]]:
    """Yield ``{name: transport}``, every name able to reach every other.

    memory: one strict transport shared by all names; tcp/tls: one transport per name
    on its own loopback listener, with routes to all the others.
    """
    names = list(names)
    if kind == "memory":
        async with MemoryTransport(strict=True) as shared:
            yield dict.fromkeys(names, shared)
        return
    transports = {n: TcpTransport(n, run_id=RUN, tls=tls_for(kind, kits, n), **options)
                  for n in names}
    async with contextlib.AsyncExitStack() as stack:
        for transport in transports.values():
            await stack.enter_async_context(transport)
        for name, transport in transports.items():
            for other, peer in transports.items():
                if other != name:
                    transport.add_route(other, str(peer.address))
        yield transports


def tell(sender: str, recipient: str, body: Any = None, *, topic: str = "value",
         iteration: int | None = 0, kind: str = "tell") -> Envelope:
    return Envelope(kind, sender, recipient, topic, body, iteration, RUN,  # type: ignore[arg-type]
                    new_message_id())
