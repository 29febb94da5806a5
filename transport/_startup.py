"""A client site's startup kit: what it needs to serve its trainer over mutual TLS.

NVFlare's layout: ``provision`` writes ``SITE/startup/`` for each site with a
listening host, and the site's trainer keeps a copy of that folder in its
workspace (FlareAgent's ``workspace_dir``)::

    rootCA.pem               the project CA
    server.crt, server.key   the site's agent server: its certificate names the listening
                             host (subject alternative name), role "agent-server"
    client.crt, client.key   the site's trainer: common name = the site, role "trainer"

The site's own transport kit (``cert.pem``, ``key.pem``) stays outside ``startup/``:
a trainer never holds the key that lets its node join the run. The agent server
asks for the trainer's certificate but does not require it at the TLS layer, so
that a trainer without one is refused by the agent protocol, with the reason.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from .tls import TlsConfigError

STARTUP_FOLDER = "startup"


@dataclass(frozen=True, slots=True)
class StartupKit:
    """The files of one site's startup kit, in ``folder``.

    Attributes:
        folder: the ``startup`` folder.
    """

    folder: Path

    @classmethod
    def find(cls, path: str | Path, site: str) -> StartupKit:
        """Find ``site``'s kit: ``path/startup`` (a workspace), ``path/site/startup`` (the
        provision output), or ``path`` itself (the startup folder).

        Raises:
            TlsConfigError: none of them holds a kit; the message names where it looked.
        """
        base = Path(path)
        places = [base / STARTUP_FOLDER, base / site / STARTUP_FOLDER, base]
        for folder in places:
            if (folder / "rootCA.pem").is_file():
                return cls(folder)
        raise TlsConfigError(f"no startup kit of site {site!r}: {str(places[0] / 'rootCA.pem')!r} "
                             f"does not exist (copy the 'startup' folder of site {site!r} from "
                             f"the provision output into {str(base)!r})")

    @property
    def root(self) -> Path:
        return self.folder / "rootCA.pem"

    @property
    def client_cert(self) -> Path:
        return self.folder / "client.crt"

    @property
    def client_key(self) -> Path:
        return self.folder / "client.key"

    @property
    def server_cert(self) -> Path:
        return self.folder / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.folder / "server.key"

    def certificate(self, path: Path) -> x509.Certificate:
        """Read one of the kit's certificates.

        Raises:
            TlsConfigError: the file is missing or not a PEM certificate.
        """
        try:
            return x509.load_pem_x509_certificate(self._require(path).read_bytes())
        except (OSError, ValueError) as exc:
            raise TlsConfigError(f"cannot read certificate {str(path)!r}: {exc}") from exc

    def subject(self, path: Path) -> tuple[str | None, str | None]:
        """The common name and the role (title) of one of the kit's certificates.

        Raises:
            TlsConfigError: the file is missing or not a PEM certificate.
        """
        subject = self.certificate(path).subject
        found = [subject.get_attributes_for_oid(oid) for oid in (NameOID.COMMON_NAME,
                                                                 NameOID.TITLE)]
        name, role = (str(values[0].value) if values else None for values in found)
        return name, role

    def listening_host(self) -> str:
        """The host the agent server's certificate names first: where trainers dial it.

        Raises:
            TlsConfigError: ``server.crt`` is missing, unreadable or names no host.
        """
        cert = self.certificate(self.server_cert)
        try:
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            names = None
        hosts = [str(name.value) for name in names or ()]
        if not hosts:
            raise TlsConfigError(f"certificate {str(self.server_cert)!r} names no host")
        return hosts[0]

    def server_context(self) -> ssl.SSLContext:
        """The agent server's context: presents ``server.crt``; a trainer's certificate,
        if any, must be signed by the project CA (whose it is, the agent server checks).

        Raises:
            TlsConfigError: a file is missing or the kit does not load.
        """
        context = self._context(ssl.PROTOCOL_TLS_SERVER, self.server_cert, self.server_key)
        context.verify_mode = ssl.CERT_OPTIONAL
        return context

    def trainer_context(self) -> ssl.SSLContext:
        """The trainer's context: presents ``client.crt``; the agent server's certificate
        must be signed by the project CA and name the host the trainer dials.

        Raises:
            TlsConfigError: a file is missing or the kit does not load.
        """
        context = self._context(ssl.PROTOCOL_TLS_CLIENT, self.client_cert, self.client_key)
        context.check_hostname = True
        context.verify_mode = ssl.CERT_REQUIRED
        return context

    def _context(self, protocol: int, cert: Path, key: Path) -> ssl.SSLContext:
        context = ssl.SSLContext(protocol)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        for path in (self.root, cert, key):
            self._require(path)
        try:
            context.load_verify_locations(cafile=str(self.root))
            context.load_cert_chain(str(cert), str(key))
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(f"cannot load startup kit {str(self.folder)!r} "
                                 f"({cert.name}, {key.name}): {exc}") from exc
        return context

    @staticmethod
    def _require(path: Path) -> Path:
        if not path.is_file():
            raise TlsConfigError(f"startup kit file {str(path)!r} does not exist")
        return path
