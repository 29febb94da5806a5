"""Provisioning: a project CA and one TLS kit per participant, like NVFlare's startup kits.

``provision`` writes ``OUT/ca/root.pem`` and ``OUT/ca/root.key`` (keep it
private) and, per participant of the project (see ``_project``),
``OUT/NAME/{root.pem,cert.pem,key.pem}``; a node with a listening host also gets
its startup kit ``OUT/NAME/startup/`` for its agent link (see ``_startup``). A
certificate's role (controller, node, admin, trainer, agent-server) is its
subject's title, as NVFlare writes it. Keys are EC P-256: quick to make and to
handshake with.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ._project import CA_FOLDER, Project
from ._startup import STARTUP_FOLDER, StartupKit
from .tls import AGENT_SERVER_ROLE, CERT_FILE, KEY_FILE, ROOT_FILE, TRAINER_ROLE

VALID_DAYS = 365
CA_KEY_FILE = "root.key"


def provision(project: Project, out: str | Path) -> dict[str, Path]:
    """Create the CA and every participant's kit under ``out``; return each kit's folder.

    Raises:
        OSError: ``out`` cannot be written.
    """
    out = Path(out)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _Signer(ca_key, _certificate(_subject(f"{project.name} root CA"), ca_key, None))
    root_pem = ca.cert.public_bytes(serialization.Encoding.PEM)
    _write(out / CA_FOLDER, {ROOT_FILE: root_pem, CA_KEY_FILE: _key_pem(ca_key)})
    kits: dict[str, Path] = {}
    for name in project.participants:
        org = project.orgs.get(name)
        cert, key = ca.issue(_subject(name, org, project.role(name)), _BOTH)
        kits[name] = _write(out / name, {ROOT_FILE: root_pem, KEY_FILE: key, CERT_FILE: cert})
        if name in project.listening_hosts:
            _startup(ca, root_pem, out / name / STARTUP_FOLDER, name, org,
                     project.listening_hosts[name])
    return kits


def _startup(ca: _Signer, root_pem: bytes, folder: Path, site: str, org: str | None,
             host: str) -> None:
    """Write ``site``'s startup kit: its agent server's credentials for ``host``, and its
    trainer's."""
    server = ca.issue(_subject(host, org, AGENT_SERVER_ROLE),
                      [ExtendedKeyUsageOID.SERVER_AUTH], x509.SubjectAlternativeName(_sans(host)))
    trainer = ca.issue(_subject(site, org, TRAINER_ROLE), [ExtendedKeyUsageOID.CLIENT_AUTH])
    names = StartupKit(folder)
    _write(folder, {names.root.name: root_pem, names.server_cert.name: server[0],
                    names.server_key.name: server[1], names.client_cert.name: trainer[0],
                    names.client_key.name: trainer[1]})


def _sans(host: str) -> list[x509.GeneralName]:
    """The names a trainer may dial its site by: ``host``, and loopback for localhost."""
    try:
        return [x509.IPAddress(ipaddress.ip_address(host))]
    except ValueError:
        pass
    loopback = ([x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", "::1")]
                if host == "localhost" else [])
    return [x509.DNSName(host), *loopback]


_BOTH = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]


@dataclass(frozen=True, slots=True)
class _Signer:
    """The project CA: its key and certificate, issuing participants' certificates."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def issue(self, subject: x509.Name, usages: list[x509.ObjectIdentifier],
              *extensions: x509.ExtensionType) -> tuple[bytes, bytes]:
        """A new key and its certificate for ``subject``, as PEM (certificate, key)."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(subject, key, self, x509.ExtendedKeyUsage(usages), *extensions)
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _subject(name: str, org: str | None = None, role: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, name)]
    if org is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    if role is not None:
        attributes.append(x509.NameAttribute(NameOID.TITLE, role))
    return x509.Name(attributes)


def _certificate(subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: _Signer | None,
                 *extensions: x509.ExtensionType) -> x509.Certificate:
    """A certificate for ``subject``; without ``issuer``, the self-signed CA."""
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(subject if issuer is None else issuer.cert.subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
               .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None),
                              critical=True))
    if issuer is None:
        builder = builder.add_extension(_ca_usage(), critical=True)
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(key if issuer is None else issuer.key, hashes.SHA256())


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=True, crl_sign=True, encipher_only=False,
                         decipher_only=False)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        path = folder / name
        path.write_bytes(data)
        if name.endswith(".key") or name == KEY_FILE:  # private keys: owner only
            os.chmod(path, 0o600)
    return folder
