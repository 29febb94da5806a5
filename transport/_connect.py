"""Connections for the TCP transport: routes, dialing, TLS, the handshake, recovery.

``Connector`` is the component a ``TcpTransport`` holds to turn sockets into
``Link``s and win them back; it reads the transport only through the public
``NetworkTransport`` interface, and hands each link to the transport's
``serve``. It accepts (``_accept``), dials with retry and backoff while
peers start in any order, has the loop do TLS (see ``_protocol``), runs the
handshake of ``_handshake``, and after a broken link redials or waits for the
peer, then gives it up. Every connection it makes is tracked until it closes,
so that closing the transport leaves none open. What happens on an established
link is ``tcp``'s.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from . import _handshake as hs
from ._accept import FAILURES, Acceptor, describe, read_handshake
from ._address import split_address
from ._link import Link, Peer
from ._protocol import dial
from .abc import TransportError

logger = logging.getLogger("peerflow.transport.tcp")


class Connector(Acceptor):
    """The connections of a ``TcpTransport``: accepting, dialing, recovering, losing."""

    def add_route(self, peer: str, address: str, *, watch: bool = False) -> None:
        """Tell where ``peer`` listens; with ``watch``, losing it calls ``on_peer_lost``.

        Raises:
            ValueError: the address is not ``host:port``.
        """
        split_address(address)
        state = self.peer(peer)
        state.route = address
        state.watched = state.watched or watch

    def watch(self, peer: str) -> None:
        """Have ``on_peer_lost`` called if ``peer`` is lost (whoever dialed)."""
        self.peer(peer).watched = True

    def connections(self) -> list[dict[str, Any]]:
        """Describe every open connection: peer, remote address, TLS, direction."""
        return [link.describe(self.host.name) for peer in self.peers.values()
                for link in peer.links]

    def peer_address(self, peer: str) -> str | None:
        """The remote address of the current connection to ``peer``, if any."""
        state = self.peers.get(peer)
        link = state.link if state else None
        return link.conn.remote if link else None

    async def connect(self, peer: str) -> None:
        """Dial ``peer`` (if need be) and wait until connected; adopts its run if ours is None.

        Raises:
            TransportError: the peer was lost (``connect_timeout`` passed, or refused).
        """
        state = self.peer(peer)
        if state.link is None and state.route is None:
            raise TransportError(f"no route to {peer!r}")
        self.ensure_dialing(state)
        state.awaited += 1
        try:
            await self.changes.until(lambda: state.link is not None or state.lost is not None)
        finally:
            state.awaited -= 1
        if state.link is None:
            raise TransportError(f"cannot connect to {peer!r}: {state.lost}")

    def ensure_dialing(self, peer: Peer) -> None:
        if peer.link is None and not peer.dialing and peer.route and self.group is not None:
            peer.dialing = True
            self.group.start_soon(self._dial, peer, self.settings.connect_timeout)

    def peer(self, name: str) -> Peer:
        peer = self.peers.get(name)
        if peer is None:
            peer = self.peers[name] = Peer(name)
        return peer

    async def _dial(self, peer: Peer, window: float) -> None:
        """Dial until connected, refused or out of time; then serve the connection."""
        deadline = anyio.current_time() + window
        delay, reason = 0.02, "not tried"
        try:
            while peer.link is None and not self.closing:
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
        limit = max(0.05, min(self.settings.handshake_timeout, deadline - anyio.current_time()))
        with anyio.fail_after(limit):
            conn = self._track(await dial(*split_address(peer.route), self.settings.client_context,
                                          self.settings.limits))
            try:
                conn.write([hs.Hello(self.host.name, self.host.run_id, self.host.address,
                                     self.settings.secret).frame()])
                welcome = hs.Welcome.parse(await read_handshake(conn))
                self._check_answer(peer.name, welcome.node, welcome.run, conn.peer_identity())
            except BaseException:
                conn.abort()
                raise
        self.host.run_id = welcome.run
        return Link(conn, peer.name, welcome.run, dialer=self.host.name)

    def _check_answer(self, expected: str, node: str, run: str, identity: str | None) -> None:
        if node != expected or (identity is not None and identity != node):
            raise hs.HandshakeError(f"dialed {expected!r} but reached {node!r}"
                                    + (f" (certificate {identity!r})" if identity else ""))
        if self.host.run_id is not None and run != self.host.run_id:
            raise hs.HandshakeError(f"peer {node!r} is in run {run!r}, not {self.host.run_id!r}")

    def flush(self, peer: Peer) -> None:
        """Write the peer's queue while its link takes writes; when closing, then say goodbye."""
        link = peer.link
        while link is not None and peer.queue and link.writable:
            link.conn.write(peer.take())
        if self.closing and not peer.queue:
            for each in list(peer.links):
                each.say_goodbye()

    def flush_soon(self, peer: Peer) -> None:
        """Flush the peer's queue once the event loop's pass is over: one write for all the
        frames the pass queued (a shard sends many a peer each iteration)."""
        if not peer.flush_due:
            peer.flush_due = True
            asyncio.get_running_loop().call_soon(self._flush_due, peer)

    def _flush_due(self, peer: Peer) -> None:
        peer.flush_due = False
        self.flush(peer)

    async def host_group(self, *, task_status: TaskStatus[TaskGroup]) -> None:
        """Own the connection tasks in a group that closing may cancel from any task."""
        async with anyio.create_task_group() as group:
            task_status.started(group)
            await anyio.sleep_forever()

    # -- losing peers --------------------------------------------------------------
    def recover(self, peer: Peer, link: Link) -> None:
        if self.closing or peer.link is not None:
            return
        if link.failure is None and not peer.queue:
            if peer.idle:
                self.peers.pop(peer.name, None)
            return
        if not (peer.watched or peer.queue or peer.route):
            self.peers.pop(peer.name, None)
            return
        reason = link.failure or f"{peer.name!r} closed the connection with data pending"
        if peer.route and not peer.dialing and self.group is not None:
            peer.dialing = True
            self.group.start_soon(self._dial, peer, self.host.reconnect_window)
        elif self.group is not None:
            self.group.start_soon(self._await_return, peer, reason)

    async def _await_return(self, peer: Peer, reason: str) -> None:
        await anyio.sleep(self.host.reconnect_window)
        if peer.link is None and not self.closing:
            self._lose(peer, f"connection broken and not restored within "
                             f"{self.host.reconnect_window:g}s: {reason}")

    def _lose(self, peer: Peer, reason: str) -> None:
        if self.closing or peer.lost is not None:
            return
        peer.lost = reason
        self.changes.notify()
        handled = peer.watched and self.host.on_peer_lost is not None
        # whoever is told (a connect that raises, a node that panics naming the peer)
        # says it; a second line is noise
        logger.log(logging.INFO if handled or peer.awaited else logging.WARNING,
                   "%s: lost peer %r: %s", self.host.name, peer.name, reason)
        for envelope in peer.drop_queue():
            self.host.dead_letter(envelope, f"peer {peer.name!r} is lost: {reason}")
        if handled:
            self.host.on_peer_lost(peer.name, reason)


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
