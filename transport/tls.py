"""Mutual TLS for the TCP transport: a participant's kit and its SSL contexts.

A kit is the folder ``provision`` writes per participant (as NVFlare's startup
kits): ``root.pem`` (the project CA), ``cert.pem`` and ``key.pem``. Both sides
present a certificate and require one signed by the project CA; a peer's
identity is the common name of its certificate, not a hostname, so hostname
checking is off and the name is checked by the handshake instead.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from .abc import TransportError

ROOT_FILE = "root.pem"
CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"
TRAINER_ROLE = "trainer"
"""The role of the certificate a site's trainer presents on its agent link."""
AGENT_SERVER_ROLE = "agent-server"
"""The role of the certificate a site's agent server presents to its trainer."""
AGENT_ROLES = frozenset({TRAINER_ROLE, AGENT_SERVER_ROLE})


def certificate_subject(peercert: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """Return the common name and the role (subject title) of a verified peer
    certificate as ``ssl.SSLSocket.getpeercert()`` gives it; (None, None) without one."""
    fields = {key: str(value) for rdn in (peercert or {}).get("subject", ()) for key, value in rdn}
    return fields.get("commonName"), fields.get("title")


class TlsConfigError(TransportError):
    """A TLS kit is missing, unreadable or inconsistent."""


@dataclass(frozen=True)
class TlsConfig:
    """One participant's TLS material.

    Attributes:
        root: the project CA certificate (PEM).
        cert: this participant's certificate (PEM).
        key: this participant's private key (PEM).
    """

    root: Path
    cert: Path
    key: Path

    @classmethod
    def from_dir(cls, folder: str | Path, name: str | None = None) -> TlsConfig:
        """Load a kit folder, or ``folder/name`` when ``folder`` is a whole provision output.

        Raises:
            TlsConfigError: a file is missing, or the certificate names someone else.
        """
        base = Path(folder)
        if not (base / CERT_FILE).exists() and name is not None:
            base = base / name
        config = cls(base / ROOT_FILE, base / CERT_FILE, base / KEY_FILE)
        for path in (config.root, config.cert, config.key):
            if not path.is_file():
                raise TlsConfigError(f"TLS kit file {str(path)!r} does not exist")
        if name is not None and config.name != name:
            raise TlsConfigError(f"TLS certificate in {str(base)!r} names {config.name!r}, "
                                 f"not {name!r}")
        return config

    @cached_property
    def name(self) -> str:
        """The common name in this participant's certificate: its identity.

        Raises:
            TlsConfigError: the certificate cannot be read or has no common name.
        """
        try:
            cert = x509.load_pem_x509_certificate(self.cert.read_bytes())
            names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        except (OSError, ValueError) as exc:
            raise TlsConfigError(f"cannot read certificate {str(self.cert)!r}: {exc}") from exc
        if not names:
            raise TlsConfigError(f"certificate {str(self.cert)!r} has no common name")
        return str(names[0].value)

    def server_context(self) -> ssl.SSLContext:
        """A context for accepting: presents our certificate, requires the peer's."""
        return self._context(ssl.PROTOCOL_TLS_SERVER)

    def client_context(self) -> ssl.SSLContext:
        """A context for dialing: presents our certificate, verifies the peer's."""
        context = self._context(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False  # identity is the certificate's name, see module doc
        return context

    def _context(self, protocol: int) -> ssl.SSLContext:
        context = ssl.SSLContext(protocol)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.verify_mode = ssl.CERT_REQUIRED
        try:
            context.load_verify_locations(cafile=str(self.root))
            context.load_cert_chain(str(self.cert), str(self.key))
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(f"cannot load TLS kit {str(self.cert.parent)!r}: {exc}") from exc
        return context
