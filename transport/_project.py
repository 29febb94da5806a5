"""Who takes part in a project: its controller, nodes (sites) and admins, from PROJECT.yml.

``PROJECT.yml`` names the participants, either peerflow's short form::

    name: demo
    controller: controller      # default "controller"
    nodes: [site-1, site-2]
    admins: [admin]             # default [admin]: who may run ``peerflow status``
    listening_hosts: {site-1: localhost}   # optional: sites that serve a trainer over TLS

or NVFlare's ``participants: [{name: ..., type: server | client | admin, org: ...,
listening_host: ...}]`` (other keys, such as ports, are NVFlare's and ignored).

A participant's name becomes a folder and a certificate's common name, so it
is checked: 1 to 64 printable characters, no path separator, not starting with
a dot, and not a reserved name: "ca" (the CA's folder, in any case, so that no
participant's kit can ever hold the CA's key) or a Windows device name.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CA_FOLDER = "ca"
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
