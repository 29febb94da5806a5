"""Provisioning: a project CA and one TLS kit per participant, like NVFlare's startup kits.

``PROJECT.yml`` names the participants, either peerflow's short form::

    name: demo
    controller: controller      # default "controller"
    nodes: [site-1, site-2]
    admins: [admin]             # default [admin]: who may run ``peerflow status``

or NVFlare's ``participants: [{name: ..., type: server | client | admin}]``.
``provision`` writes ``OUT/ca/root.pem`` and ``OUT/ca/root.key`` (keep it
private) and, per participant, ``OUT/NAME/{root.pem,cert.pem,key.pem}``. Keys
are EC P-256: quick to make and to handshake with.

A participant's name becomes a folder and a certificate's common name, so it
is checked: 1 to 64 printable characters, no path separator, not starting with
a dot, and not a reserved name: "ca" (the CA's folder, in any case, so that no
participant's kit can ever hold the CA's key) or a Windows device name.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .tls import CERT_FILE, KEY_FILE, ROOT_FILE

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

    def __post_init__(self) -> None:
        for name in self.participants:
            _name(name, f"project {self.name!r}")
        _check_unique(self, f"project {self.name!r}")

    @property
    def participants(self) -> tuple[str, ...]:
        return (self.controller, *self.nodes, *self.admins)


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
    if "participants" in data:
        roles = _nvflare_roles(data["participants"], where)
    else:
        roles = {"controller": [data.get("controller", "controller")],
                 "node": _names(data.get("nodes"), f"{where}: nodes"),
                 "admin": _names(data.get("admins", ["admin"]), f"{where}: admins")}
    if len(roles["controller"]) != 1:
        raise ProvisionError(f"{where}: expected one controller (server), got "
                             f"{roles['controller']}")
    return Project(str(data.get("name", "peerflow")), _name(roles["controller"][0], where),
                   tuple(roles["node"]), tuple(roles["admin"]))


def _nvflare_roles(participants: Any, where: str) -> dict[str, list[str]]:
    if not isinstance(participants, list):
        raise ProvisionError(f"{where}: participants must be a list")
    roles: dict[str, list[str]] = {"controller": [], "node": [], "admin": []}
    for entry in participants:
        if not isinstance(entry, dict) or entry.get("type") not in _ROLES:
            raise ProvisionError(f"{where}: participant {entry!r:.80} needs a name and a type "
                                 f"among {sorted(_ROLES)}")
        roles[_ROLES[entry["type"]]].append(_name(entry.get("name"), where))
    return roles


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
    ca_cert = _certificate(f"{project.name} root CA", ca_key, ca_key, None, ca=True)
    root_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    _write(out / CA_FOLDER, {ROOT_FILE: root_pem, CA_KEY_FILE: _key_pem(ca_key)})
    kits: dict[str, Path] = {}
    for name in project.participants:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(name, key, ca_key, ca_cert, ca=False)
        kits[name] = _write(out / name, {ROOT_FILE: root_pem, KEY_FILE: _key_pem(key),
                                         CERT_FILE: cert.public_bytes(serialization.Encoding.PEM)})
    return kits


def _certificate(name: str, key: ec.EllipticCurvePrivateKey, signer: ec.EllipticCurvePrivateKey,
                 issuer: x509.Certificate | None, *, ca: bool) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer.subject if issuer is not None else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(_ca_usage(), critical=True)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(signer, hashes.SHA256())


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
        if name.endswith(".key") or name == KEY_FILE:
            os.chmod(path, 0o600)
    return folder
