"""Connections for the TCP transport: routes, dialing, TLS, the handshake, recovery.

``Connector`` is the part of ``TcpTransport`` that turns sockets into ``Link``s
and wins them back: it accepts (``_accept``), dials with retry and backoff while
peers start in any order, has the loop do TLS (see ``_protocol``), runs the
handshake of ``_handshake``, and after a broken link redials or waits for the
peer, then gives it up. Every connection it makes is tracked until it closes,
so that closing the transport leaves none open. What happens on an established
link is ``tcp``'s.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any

import anyio

from . import _handshake as hs
from ._accept import FAILURES, Acceptor, describe, read_handshake
from ._address import split_address
from ._envelope import Envelope
from ._link import Link, Peer
from ._protocol import dial
from .abc import TransportError

logger = logging.getLogger("peerflow.transport.tcp")


class Connector(Acceptor):
    """Routes, dialing and recovering for ``TcpTransport`` (a mixin: it uses the
    transport's state)."""

    address: str | None
    connect_timeout: float
    reconnect_window: float
    on_peer_lost: Callable[[str, str], None] | None
    dead_letter: Callable[[Envelope, str], None]
    _client_context: ssl.SSLContext | None

    def add_route(self, peer: str, address: str, *, watch: bool = False) -> None:
        """Tell where ``peer`` listens; with ``watch``, losing it calls ``on_peer_lost``.

        Raises:
            ValueError: the address is not ``host:port``.
        """
        split_address(address)
        state = self._peer(peer)
        state.route = address
        state.watched = state.watched or watch

    def watch(self, peer: str) -> None:
        """Have ``on_peer_lost`` called if ``peer`` is lost (whoever dialed)."""
        self._peer(peer).watched = True

    def connections(self) -> list[dict[str, Any]]:
        """Describe every open connection: peer, remote address, TLS, direction."""
        return [link.describe(self.name) for peer in self._peers.values()
                for link in peer.links]

    def peer_address(self, peer: str) -> str | None:
        """The remote address of the current connection to ``peer``, if any."""
        state = self._peers.get(peer)
        link = state.link if state else None
        return link.conn.remote if link else None

    async def connect(self, peer: str) -> None:
        """Dial ``peer`` (if need be) and wait until connected; adopts its run if ours is None.

        Raises:
            TransportError: the peer was lost (``connect_timeout`` passed, or refused).
        """
        state = self._peer(peer)
        if state.link is None and state.route is None:
            raise TransportError(f"no route to {peer!r}")
        self._ensure_dialing(state)
        await self._changes.until(lambda: state.link is not None or state.lost is not None)
        if state.link is None:
            raise TransportError(f"cannot connect to {peer!r}: {state.lost}")

    def _ensure_dialing(self, peer: Peer) -> None:
        if peer.link is None and not peer.dialing and peer.route and self._group is not None:
            peer.dialing = True
            self._group.start_soon(self._dial, peer, self.connect_timeout)

    def _peer(self, name: str) -> Peer:
        peer = self._peers.get(name)
        if peer is None:
            peer = self._peers[name] = Peer(name)
        return peer

    async def _dial(self, peer: Peer, window: float) -> None:
        """Dial until connected, refused or out of time; then serve the connection."""
        deadline = anyio.current_time() + window
        delay, reason = 0.02, "not tried"
        try:
            while peer.link is None and not self._closing:
                try:
                    link = await self._connect(peer, deadline)
                except hs.HandshakeError as exc:
                    if not exc.retry:
                        return self._lose(peer, str(exc))
                    reason = str(exc)
                except FAILURES as exc:
                    if _permanent(exc):
                        return self._lose(peer, describe(exc))
                    reason = describe(exc)
                else:
                    peer.dialing = False
                    return await self._serve(link)
                if anyio.current_time() + delay > deadline:
                    return self._lose(peer, f"no connection to {peer.route} within "
                                            f"{window:g}s: {reason}")
                await anyio.sleep(delay)
                delay = min(2 * delay, 0.5)
        finally:
            peer.dialing = False

    async def _connect(self, peer: Peer, deadline: float) -> Link:
        assert peer.route is not None
        limit = max(0.05, min(self.handshake_timeout, deadline - anyio.current_time()))
        with anyio.fail_after(limit):
            conn = self._track(await dial(*split_address(peer.route), self._client_context,
                                          self._limits))
            try:
                conn.write([hs.hello(self.name, self.run_id, self.address, self.secret)])
                node, run = hs.parse_answer(await read_handshake(conn))
                self._check_answer(peer.name, node, run, conn.peer_identity())
            except BaseException:
                conn.abort()
                raise
        self.run_id = run
        return Link(conn, peer.name, run, dialer=self.name)

    def _check_answer(self, expected: str, node: str, run: str, identity: str | None) -> None:
        if node != expected or (identity is not None and identity != node):
            raise hs.HandshakeError(f"dialed {expected!r} but reached {node!r}"
                                    + (f" (certificate {identity!r})" if identity else ""))
        if self.run_id is not None and run != self.run_id:
            raise hs.HandshakeError(f"peer {node!r} is in run {run!r}, not {self.run_id!r}")

    # -- losing peers --------------------------------------------------------------
    def _recover(self, peer: Peer, link: Link) -> None:
        if self._closing or peer.link is not None:
            return
        if link.failure is None and not peer.queue:
            if peer.idle:
                self._peers.pop(peer.name, None)
            return
        if not (peer.watched or peer.queue or peer.route):
            self._peers.pop(peer.name, None)
            return
        reason = link.failure or f"{peer.name!r} closed the connection with data pending"
        if peer.route and not peer.dialing and self._group is not None:
            peer.dialing = True
            self._group.start_soon(self._dial, peer, self.reconnect_window)
        elif self._group is not None:
            self._group.start_soon(self._await_return, peer, reason)

    async def _await_return(self, peer: Peer, reason: str) -> None:
        await anyio.sleep(self.reconnect_window)
        if peer.link is None and not self._closing:
            self._lose(peer, f"connection broken and not restored within "
                             f"{self.reconnect_window:g}s: {reason}")

    def _lose(self, peer: Peer, reason: str) -> None:
        if self._closing or peer.lost is not None:
            return
        peer.lost = reason
        self._changes.notify()
        logger.warning("%s: lost peer %r: %s", self.name, peer.name, reason)
        for envelope in peer.drop_queue():
            self.dead_letter(envelope, f"peer {peer.name!r} is lost: {reason}")
        if peer.watched and self.on_peer_lost is not None:
            self.on_peer_lost(peer.name, reason)


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(512)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _permanent(exc: BaseException) -> bool:
    """A TLS verification failure will not pass on retry."""
    return isinstance(exc, ssl.SSLCertVerificationError) or (
        isinstance(exc, ssl.SSLError) and "ALERT" in str(exc.reason or ""))
