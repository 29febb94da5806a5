"""Secure agent links: mutual TLS between a site's node and its trainer (NVFlare's secure_mode).

Both ends use the site's startup kit (``peerflow.transport.StartupKit``, written by
``provision`` for a site with a ``listening_host``). The node serves with the kit's
``server.crt``; the trainer, pointed at a workspace holding a copy of ``startup/``,
presents ``client.crt`` and checks that the node's certificate names the host it
dials. The node admits only a certificate of role "trainer" for its own site:
a trainer without a certificate, with one of another project (refused by TLS
itself), of another site or of another role is refused, and both ends say why.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import ByteStream
from anyio.streams.tls import TLSAttribute, TLSStream

from peerflow.transport import TRAINER_ROLE, StartupKit, TlsConfigError, certificate_subject

from ._agent_protocol import AgentError


class AgentKitError(AgentError):
    """A startup kit for a secure agent link is missing, unreadable, or someone else's."""


def trainer_tls_context(workspace_dir: str | Path, site_name: str) -> ssl.SSLContext:
    """The trainer's TLS context for ``secure_mode``, from the site's startup kit.

    Args:
        workspace_dir: a folder holding the site's ``startup/`` (or the provision output,
            or the ``startup`` folder itself).
        site_name: the site (node) whose trainer this is.

    Raises:
        AgentKitError: a kit file is missing or unreadable (named), or ``client.crt`` is
            not the trainer certificate of ``site_name``.
    """
    try:
        kit = StartupKit.find(workspace_dir, site_name)
        name, role = kit.subject(kit.client_cert)
        if role != TRAINER_ROLE or name != site_name:
            raise AgentKitError(f"{str(kit.client_cert)!r} is the certificate of {name!r} "
                                f"(role {role!r}), not of site {site_name!r}'s trainer")
        return kit.trainer_context()
    except TlsConfigError as exc:
        raise AgentKitError(f"secure mode for site {site_name!r}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class AgentTls:
    """The node side of a secure agent link: its site, kit and TLS context.

    Attributes:
        site: the site whose trainer the node admits.
        kit: the site's startup kit.
        context: the agent server's TLS context.
        host: the listening host the kit's server certificate names (trainers dial it).
    """

    site: str
    kit: StartupKit
    context: ssl.SSLContext
    host: str

    @classmethod
    def load(cls, path: str | Path, site: str) -> AgentTls:
        """Load ``site``'s kit from ``path`` (see ``StartupKit.find``).

        Raises:
            AgentKitError: the kit is missing (where it was looked for is named) or broken.
        """
        try:
            kit = StartupKit.find(path, site)
            return cls(site, kit, kit.server_context(), kit.listening_host())
        except TlsConfigError as exc:
            raise AgentKitError(f"secure agent link of site {site!r}: {exc}") from exc

    async def accept(self, stream: ByteStream,
                     timeout: float) -> tuple[ByteStream | None, str | None]:
        """The TLS handshake with a dialer, within ``timeout`` seconds.

        Returns the secured stream and why its certificate is refused (None: admitted),
        or None and why the handshake failed (the stream is then closed).
        """
        try:
            with anyio.fail_after(timeout):
                secure = await TLSStream.wrap(stream, server_side=True, ssl_context=self.context,
                                              standard_compatible=False)
        except (TimeoutError, ssl.SSLError, anyio.EndOfStream, anyio.BrokenResourceError,
                OSError) as exc:
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            return None, _failure(exc)
        return secure, self.refusal(secure.extra(TLSAttribute.peer_certificate))

    def refusal(self, peercert: dict[str, Any] | None) -> str | None:
        """Why a trainer presenting ``peercert`` (verified by TLS) is refused; None: admitted."""
        name, role = certificate_subject(peercert)
        if name is None:
            return (f"it presented no certificate: a trainer of site {self.site!r} needs "
                    "secure mode with the site's startup kit")
        if role != TRAINER_ROLE:
            return (f"its certificate is {name!r}'s of role {role!r}, not a trainer's "
                    "(client.crt of the site's startup kit)")
        if name != self.site:
            return f"its certificate is site {name!r}'s trainer's, not site {self.site!r}'s"
        return None


def _failure(exc: BaseException) -> str:
    """What a failed TLS handshake of a trainer says, for the node's refusal."""
    if isinstance(exc, TimeoutError):
        return "no TLS handshake in time"
    if not isinstance(exc, ssl.SSLError):
        return ("the connection ended during the TLS handshake (the trainer refused this "
                "node's certificate, or is no trainer)")
    why = getattr(exc, "verify_message", None) or exc.reason or str(exc)
    if exc.reason in ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "RECORD_LAYER_FAILURE"):
        return f"it does not speak TLS ({why}): a trainer needs secure mode"
    return f"its TLS certificate failed: {why}"
