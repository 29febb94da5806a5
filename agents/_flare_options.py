"""An agent's options: peerflow's and NVFlare FlareAgent's constructor arguments, resolved.

A FlareAgent trainer passes NVFlare's arguments; each is taken at its NVFlare
meaning where peerflow has that concept, and where it has not, what it does here
is said below and in its log line (no argument is silently pretended to work):

- ``root_url`` is, in NVFlare, the FL server's URL, through which the trainer finds
  its site. A peerflow trainer connects straight to its node's agent address, which
  its launcher puts in ``PEERFLOW_AGENT_ADDRESS``. So ``address`` comes first, then
  that variable, and ``root_url`` (its scheme dropped: ``grpc://host:port``) only if
  neither gives one; otherwise it is not used, and the log says so. The environment
  outranks ``root_url`` because a trainer written for NVFlare hard-codes its server.
- ``site_name`` (or NVFlare 2.4's ``flare_site_name``; default ``PEERFLOW_NODE``) is
  checked against the node that admits the agent, and names the startup kit in
  secure mode.
- ``secure_mode=True`` loads the site's startup kit from ``workspace_dir`` with
  ``trainer_tls_context(workspace_dir, site_name)`` and connects over mutual TLS;
  ``ssl_context`` gives a context directly. ``workspace_dir`` has no other use. A
  peerflow launcher in secure mode puts the kit's workspace in
  ``PEERFLOW_AGENT_WORKSPACE``: that folder is used when ``workspace_dir`` is not given
  or is ``"."`` (NVFlare's trainers default it to the current folder), and also
  without ``secure_mode``, so a trainer of a secure site needs no change.
- ``read_interval``, ``pipe``, ``metric_pipe``, ``task_channel_name``,
  ``metric_channel_name`` and ``close_pipe`` have no effect: the node pushes tasks
  down the agent's one link, which carries tasks and metrics, so there is nothing to
  poll and no pipe or channel to choose or close. They are accepted so that NVFlare
  code runs, and logged when given.
"""

from __future__ import annotations

import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._agent_env import (
    ADDRESS_ENV,
    AGENT_ID_ENV,
    HEARTBEAT_TIMEOUT_ENV,
    NODE_ENV,
    WORKSPACE_ENV,
    environment_tls_context,
)
from ._agent_link import parse_address
from ._agent_tls import trainer_tls_context

logger = logging.getLogger("peerflow.agents")

DEFAULT_HEARTBEAT_TIMEOUT = 60.0
"""Seconds, when neither the argument nor ``PEERFLOW_AGENT_HEARTBEAT_TIMEOUT`` gives one."""


@dataclass(frozen=True, slots=True)
class AgentOptions:
    """An agent's options, checked; see ``AsyncAgent`` for what each means."""

    address: tuple[str, int]
    agent_id: str
    site_name: str | None
    ssl_context: ssl.SSLContext | None
    heartbeat_interval: float
    heartbeat_timeout: float
    resend_interval: float
    max_resends: int | None
    submit_result_timeout: float


def agent_options(address: str | tuple[str, int] | None, agent_id: str | None, *,
                  site_name: str | None = None, flare_site_name: str | None = None,
                  root_url: str | None = None, workspace_dir: str | Path | None = None,
                  secure_mode: bool = False, ssl_context: ssl.SSLContext | None = None,
                  heartbeat_interval: float = 5.0, heartbeat_timeout: float | None = None,
                  resend_interval: float = 0.2, max_resends: int | None = None,
                  submit_result_timeout: float = 30.0, read_interval: float | None = None,
                  pipe: Any = None, metric_pipe: Any = None,
                  task_channel_name: str | None = None, metric_channel_name: str | None = None,
                  close_pipe: bool | None = None) -> AgentOptions:
    """Resolve an agent's constructor arguments (see the module's docstring).

    Raises:
        ValueError: no address or agent id, given or in the environment; two site
            names that differ; a non-positive time; a negative ``max_resends``;
            ``secure_mode`` without a site name.
        AgentKitError: secure mode, and the workspace holds no valid kit of the site.
        TypeError: ``address`` is neither ``"host:port"`` nor ``(host, port)``.
    """
    _log_no_effect(read_interval=read_interval, pipe=pipe, metric_pipe=metric_pipe,
                   task_channel_name=task_channel_name,
                   metric_channel_name=metric_channel_name, close_pipe=close_pipe)
    node_address = _node_address(address, root_url)
    agent_id = agent_id or os.environ.get(AGENT_ID_ENV, "")
    if not agent_id:
        raise ValueError(f"an agent needs its id: pass agent_id or set {AGENT_ID_ENV}")
    timeout = heartbeat_timeout or float(os.environ.get(HEARTBEAT_TIMEOUT_ENV,
                                                        DEFAULT_HEARTBEAT_TIMEOUT))
    _check_times(heartbeat_interval=heartbeat_interval, heartbeat_timeout=timeout,
                 resend_interval=resend_interval, submit_result_timeout=submit_result_timeout,
                 read_interval=read_interval)
    if max_resends is not None and max_resends < 0:
        raise ValueError(f"max_resends must be >= 0 or None, got {max_resends}")
    site = _site(site_name, flare_site_name)
    if ssl_context is None:
        ssl_context = _kit_context(workspace_dir, site) if secure_mode else None
        ssl_context = ssl_context or environment_tls_context()
    return AgentOptions(node_address, agent_id, site, ssl_context,
                        heartbeat_interval, timeout, resend_interval, max_resends,
                        submit_result_timeout)


def _node_address(address: Any, root_url: str | None) -> tuple[str, int]:
    if address is None:
        address = os.environ.get(ADDRESS_ENV)
    if address and root_url:
        logger.info("root_url %r is not used: the agent connects straight to its node at %s",
                    root_url, address)
    if not address and root_url:
        scheme, _, rest = root_url.partition("://")
        address = (rest or scheme).split("/", 1)[0]
    if not address:
        raise ValueError(f"an agent needs its node's agent address: pass address (or "
                         f"root_url) or set {ADDRESS_ENV}")
    if not isinstance(address, str | tuple):
        raise TypeError(f"address must be 'host:port' or (host, port), got "
                        f"{type(address).__name__}")
    return parse_address(address)


def _site(site_name: str | None, flare_site_name: str | None) -> str | None:
    if site_name and flare_site_name and site_name != flare_site_name:
        raise ValueError(f"site_name {site_name!r} and flare_site_name {flare_site_name!r} "
                         f"differ: they are one name, pass one of them")
    return site_name or flare_site_name or os.environ.get(NODE_ENV) or None


def _kit_context(workspace_dir: str | Path | None, site: str | None) -> ssl.SSLContext:
    if site is None:
        raise ValueError(f"secure_mode needs the site's name (site_name, or {NODE_ENV}) to "
                         f"find its startup kit in workspace_dir")
    if str(workspace_dir or ".") == "." and os.environ.get(WORKSPACE_ENV):
        workspace_dir = os.environ[WORKSPACE_ENV]
    return trainer_tls_context(workspace_dir or ".", site)


def _check_times(**times: float | None) -> None:
    for name, value in times.items():
        if value is not None and not value > 0:  # NaN too
            raise ValueError(f"{name} must be > 0 seconds, got {value}")


def _log_no_effect(**given: Any) -> None:
    for name, value in given.items():
        if value is not None:
            logger.info("%s=%r has no effect: the node pushes tasks down the agent's one "
                        "link, which also carries metrics", name, value)
