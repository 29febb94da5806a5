"""FlareAgent's constructor arguments: what each one does in peerflow, or that it does nothing."""

from __future__ import annotations

import logging
import math
import ssl
from pathlib import Path
from typing import Any

import pytest

from peerflow.agents import Agent, AsyncAgent, FlareAgentWithCellPipe, _agent_env, _flare_options

ENV = ("PEERFLOW_AGENT_ADDRESS", "PEERFLOW_AGENT_ID", "PEERFLOW_NODE",
       "PEERFLOW_AGENT_HEARTBEAT_TIMEOUT", "PEERFLOW_AGENT_WORKSPACE")


@pytest.fixture(autouse=True)
def no_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def test_root_url_is_the_address_only_when_neither_the_argument_nor_the_launcher_gives_one(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    assert AsyncAgent(agent_id="a", root_url="grpc://server:8002").address == ("server", 8002)
    assert AsyncAgent(agent_id="a", root_url="tcp://[::1]:9/x").address == ("::1", 9)
    monkeypatch.setenv("PEERFLOW_AGENT_ADDRESS", "127.0.0.1:5000")
    with caplog.at_level(logging.INFO, "peerflow.agents"):
        agent = AsyncAgent(agent_id="a", root_url="grpc://server:8002")
    assert agent.address == ("127.0.0.1", 5000)
    assert "root_url 'grpc://server:8002' is not used" in caplog.text
    assert AsyncAgent("10.0.0.1:7", "a").address == ("10.0.0.1", 7)


def test_the_site_name_has_nvflares_two_spellings_and_the_launchers_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert AsyncAgent("h:1", "a", flare_site_name="site-1").site_name == "site-1"
    assert AsyncAgent("h:1", "a", site_name="site-1").site_name == "site-1"
    assert AsyncAgent("h:1", "a").site_name is None
    monkeypatch.setenv("PEERFLOW_NODE", "site-3")
    assert AsyncAgent("h:1", "a").site_name == "site-3"
    with pytest.raises(ValueError, match="site_name 'a' and flare_site_name 'b' differ"):
        AsyncAgent("h:1", "a", site_name="a", flare_site_name="b")


def test_the_agents_own_times_are_kept_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    options = AsyncAgent("h:1", "a", heartbeat_interval=2, heartbeat_timeout=120,
                         resend_interval=1, max_resends=3, submit_result_timeout=2).options
    assert (options.heartbeat_interval, options.heartbeat_timeout, options.resend_interval,
            options.max_resends, options.submit_result_timeout) == (2, 120, 1, 3, 2)
    monkeypatch.setenv("PEERFLOW_AGENT_HEARTBEAT_TIMEOUT", "7.5")
    assert AsyncAgent("h:1", "a").options.heartbeat_timeout == 7.5
    for bad in ({"heartbeat_timeout": -1}, {"submit_result_timeout": 0},
                {"heartbeat_interval": math.nan}, {"read_interval": 0}):
        with pytest.raises(ValueError, match=f"{next(iter(bad))} must be > 0 seconds"):
            AsyncAgent("h:1", "a", **bad)
    with pytest.raises(ValueError, match="max_resends must be >= 0 or None, got -1"):
        AsyncAgent("h:1", "a", max_resends=-1)


def test_pipe_arguments_are_accepted_and_said_to_have_no_effect(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, "peerflow.agents"):
        FlareAgentWithCellPipe("h:1", "a", pipe=object(), metric_pipe=None, read_interval=0.5,
                               task_channel_name="task", close_pipe=True)
    for name in ("pipe", "read_interval", "task_channel_name", "close_pipe"):
        assert f"{name}=" in caplog.text
    assert "metric_pipe" not in caplog.text and "has no effect" in caplog.text


def test_bad_arguments_are_refused_naming_them() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'flare_site'"):
        AsyncAgent("h:1", "a", flare_site="site-1")
    with pytest.raises(TypeError, match="address must be 'host:port' or \\(host, port\\), got "
                                        "object"):
        Agent(object(), "a")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="PEERFLOW_AGENT_ID"):
        AsyncAgent("h:1")


def test_secure_mode_loads_the_sites_kit_from_the_workspace(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[Any] = []
    context = ssl.create_default_context()

    def trainer_tls_context(workspace_dir: Any, site_name: str) -> ssl.SSLContext:
        calls.append((workspace_dir, site_name))
        return context

    for module in (_flare_options, _agent_env):
        monkeypatch.setattr(module, "trainer_tls_context", trainer_tls_context)
    agent = AsyncAgent("h:1", "a", flare_site_name="site-1", workspace_dir=tmp_path,
                       secure_mode=True)
    assert agent.options.ssl_context is context and calls == [(tmp_path, "site-1")]
    assert AsyncAgent("h:1", "a", site_name="s", secure_mode=True).options.ssl_context
    assert calls[-1] == (".", "s")
    assert AsyncAgent("h:1", "a", site_name="s").options.ssl_context is None
    with pytest.raises(ValueError, match="secure_mode needs the site's name"):
        AsyncAgent("h:1", "a", secure_mode=True)


def test_a_secure_launchers_workspace_serves_a_trainer_without_its_own(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[Any] = []

    def trainer_tls_context(workspace_dir: Any, site_name: str) -> ssl.SSLContext:
        calls.append((str(workspace_dir), site_name))
        return ssl.create_default_context()

    for module in (_flare_options, _agent_env):
        monkeypatch.setattr(module, "trainer_tls_context", trainer_tls_context)
    monkeypatch.setenv("PEERFLOW_AGENT_WORKSPACE", "/kits/site-1")
    monkeypatch.setenv("PEERFLOW_NODE", "site-1")
    for workspace in (None, "."):  # NVFlare's trainers default it to the current folder
        AsyncAgent("h:1", "a", workspace_dir=workspace, secure_mode=True)
    AsyncAgent("h:1", "a", workspace_dir=tmp_path, secure_mode=True)  # given: it wins
    AsyncAgent("h:1", "a")  # not secure_mode: the launcher's secure link all the same
    assert calls == [("/kits/site-1", "site-1")] * 2 + [(str(tmp_path), "site-1"),
                                                        ("/kits/site-1", "site-1")]
