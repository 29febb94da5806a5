"""Provisioning: a project CA and one TLS kit per participant, like NVFlare's startup kits.

``PROJECT.yml`` names the participants, either peerflow's short form::

    name: demo
    controller: controller      # default "controller"
    nodes: [site-1, site-2]
    admins: [admin]             # default [admin]: who may run ``peerflow status``
    listening_hosts: {site-1: localhost}   # optional: sites that serve a trainer over TLS

or NVFlare's ``participants: [{name: ..., type: server | client | admin, org: ...,
listening_host: ...}]`` (other keys, such as ports, are NVFlare's and ignored).
``provision`` writes ``OUT/ca/root.pem`` and ``OUT/ca/root.key`` (keep it
private) and, per participant, ``OUT/NAME/{root.pem,cert.pem,key.pem}``; a node
with a listening host also gets its startup kit ``OUT/NAME/startup/`` for its
agent link (see ``_startup``). A certificate's role (controller, node, admin,
trainer, agent-server) is its subject's title, as NVFlare writes it. Keys are
EC P-256: quick to make and to handshake with.

A participant's name becomes a folder and a certificate's common name, so it
is checked: 1 to 64 printable characters, no path separator, not starting with
a dot, and not a reserved name: "ca" (the CA's folder, in any case, so that no
participant's kit can ever hold the CA's key) or a Windows device name.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ._startup import STARTUP_FOLDER, StartupKit
from .tls import AGENT_SERVER_ROLE, CERT_FILE, KEY_FILE, ROOT_FILE, TRAINER_ROLE

VALID_DAYS = 365
CA_FOLDER = "ca"
CA_KEY_FILE = "root.key"
MAX_NAME_LENGTH = 64
DEVICE_NAMES = frozenset({"con", "prn", "aux", "nul",
                          *(f"{port}{k}" for port in ("com", "lpt") for k in range(10))})
"""Windows opens the device, not a folder, for these names, whatever their extension."""
_SEPARATORS = frozenset("/\\:")
_ROLES = {"server": "controller", "controller": "controller", "client": "node",
          "node": "node", "admin": "admin"}


class ProvisionError(ValueError):
    """A project file is missing or malformed, or names a participant twice or badly."""


@dataclass(frozen=True, slots=True)
class Project:
    """Who takes part in a project: a controller, nodes and admins.

    Raises:
        ProvisionError: a name is invalid or reserved, or names two participants.
    """

    name: str
    controller: str
    nodes: tuple[str, ...]
    admins: tuple[str, ...]
    listening_hosts: Mapping[str, str] = field(default_factory=dict, hash=False)
    orgs: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        where = f"project {self.name!r}"
        for name in self.participants:
            _name(name, where)
        _check_unique(self, where)
        for name, host in self.listening_hosts.items():
            if name not in self.nodes:
                raise ProvisionError(f"{where}: listening_host given for {name!r}, which is "
                                     f"not a client site (sites: {list(self.nodes)})")
            _host(host, f"{where}: listening_host of {name!r}")

    @property
    def participants(self) -> tuple[str, ...]:
        return (self.controller, *self.nodes, *self.admins)

    def role(self, name: str) -> str:
        """The role written in ``name``'s certificate: controller, node or admin."""
        return ("controller" if name == self.controller
                else "node" if name in self.nodes else "admin")


def load_project(path: str | Path) -> Project:
    """Read a project file (see the module doc).

    Raises:
        ProvisionError: the file is missing, not YAML, or malformed.
    """
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ProvisionError(f"cannot read project file {str(path)!r}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ProvisionError(f"project file {str(path)!r} is not valid YAML: {exc}") from exc
    return project_from_dict(data, str(path))


def project_from_dict(data: Any, where: str = "project") -> Project:
    """Build a project from its mapping.

    Raises:
        ProvisionError: naming the problem.
    """
    if not isinstance(data, dict):
        raise ProvisionError(f"{where}: expected a mapping, got {type(data).__name__}")
    hosts: dict[str, str] = {}
    orgs: dict[str, str] = {}
    if "participants" in data:
        roles = _nvflare_roles(data["participants"], where, hosts, orgs)
    else:
        roles = {"controller": [data.get("controller", "controller")],
                 "node": _names(data.get("nodes"), f"{where}: nodes"),
                 "admin": _names(data.get("admins", ["admin"]), f"{where}: admins")}
        given = data.get("listening_hosts", {})
        if not isinstance(given, dict):
            raise ProvisionError(f"{where}: listening_hosts must map site names to hosts")
        hosts = {str(name): host for name, host in given.items()}
    if len(roles["controller"]) != 1:
        raise ProvisionError(f"{where}: expected one controller (server), got "
                             f"{roles['controller']}")
    return Project(str(data.get("name", "peerflow")), _name(roles["controller"][0], where),
                   tuple(roles["node"]), tuple(roles["admin"]), hosts, orgs)


def _nvflare_roles(participants: Any, where: str, hosts: dict[str, str],
                   orgs: dict[str, str]) -> dict[str, list[str]]:
    """Each participant's role, and into ``hosts`` and ``orgs`` their listening host and org."""
    if not isinstance(participants, list):
        raise ProvisionError(f"{where}: participants must be a list")
    roles: dict[str, list[str]] = {"controller": [], "node": [], "admin": []}
    for entry in participants:
        if not isinstance(entry, dict) or entry.get("type") not in _ROLES:
            raise ProvisionError(f"{where}: participant {entry!r:.80} needs a name and a type "
                                 f"among {sorted(_ROLES)}")
        name = _name(entry.get("name"), where)
        roles[_ROLES[entry["type"]]].append(name)
        if entry.get("listening_host") is not None:
            hosts[name] = entry["listening_host"]
        if entry.get("org") is not None:
            orgs[name] = _name(entry["org"], f"{where}: org of {name!r}")
    return roles


def _host(value: Any, where: str) -> str:
    """A listening host: a DNS name or an IP address, as a certificate can name it."""
    labels = value.rstrip(".").split(".") if isinstance(value, str) else [""]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if all(0 < len(label) <= 63 and label.replace("-", "").replace("_", "").isalnum()
           and label.isascii() for label in labels) and len(value) <= 253:
        return str(value)
    raise ProvisionError(f"{where}: {value!r:.80} is not a host name or IP address")


def _names(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ProvisionError(f"{where} must be a non-empty list of names")
    return [_name(v, where) for v in value]


def _name(value: Any, where: str) -> str:
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not (0 < len(text) <= MAX_NAME_LENGTH and text.isprintable()
            and _SEPARATORS.isdisjoint(text) and not text.startswith(".")):
        raise ProvisionError(f"{where}: {value!r:.80} is not a valid participant name: "
                             f"expected 1 to {MAX_NAME_LENGTH} printable characters, no '/', "
                             "'\\' or ':', not starting with '.'")
    folder = text.casefold().rstrip(". ")  # the folder Windows and macOS would open
    if folder == CA_FOLDER or folder.split(".")[0] in DEVICE_NAMES:
        raise ProvisionError(f"{where}: participant name {text!r} is reserved")
    return text


def _check_unique(project: Project, where: str) -> None:
    folders = [name.casefold() for name in project.participants]  # one folder, any case
    twice = sorted({n for n in project.participants if folders.count(n.casefold()) > 1})
    if twice:
        raise ProvisionError(f"{where}: participants named more than once: {twice}")


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
