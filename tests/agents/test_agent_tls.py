"""Secure mode: a site's node and its trainer over mutual TLS with the site's startup kit."""

from __future__ import annotations

import shutil
import ssl
from pathlib import Path
from typing import Any

import anyio
import pytest

import peerflow
from peerflow.actors import Config
from peerflow.agents import (
    AgentClosed,
    AgentKitError,
    AgentRefused,
    AgentServer,
    AgentTls,
    AsyncAgent,
    LinkSettings,
    TaskExchanger,
    TaskResult,
    agent_environment,
    agent_status,
    trainer_tls_context,
)
from peerflow.algorithms import metropolis_hastings, path
from peerflow.transport import (
    TcpTransport,
    TlsConfig,
    TransportError,
    project_from_dict,
    provision,
)

HB = {"heartbeat_interval": 0.1, "heartbeat_timeout": 1.0}
@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory, seed_project: dict[str, Any]) -> Path:
    out = tmp_path_factory.mktemp("foreign")
    provision(project_from_dict({**seed_project, "name": "other"}), out)
    return out


def workspace(tmp_path: Path, site_kits: Path, site: str) -> Path:
    """A trainer's workspace: a copy of the site's startup folder (as the seed says)."""
    folder = tmp_path / f"workspace-{site}"
    shutil.copytree(site_kits / site / "startup", folder / "startup")
    return folder


def test_provision_gives_each_site_with_a_listening_host_its_startup_kit(site_kits: Path) -> None:
    startup = site_kits / "site-1" / "startup"
    assert sorted(p.name for p in startup.iterdir()) == [
        "client.crt", "client.key", "rootCA.pem", "server.crt", "server.key"]
    assert not (site_kits / "server" / "startup").exists()
    assert AgentTls.load(site_kits, "site-1").host == "localhost"
    assert (startup / "server.key").stat().st_mode & 0o077 == 0


def test_a_trainer_without_a_kit_is_told_which_file_is_missing(tmp_path: Path,
                                                               site_kits: Path) -> None:
    with pytest.raises(AgentKitError, match=r"no startup kit of site 'site-1': '.*/startup/"
                                            r"rootCA.pem' does not exist"):
        trainer_tls_context(tmp_path, "site-1")
    ws = workspace(tmp_path, site_kits, "site-1")
    (ws / "startup" / "client.key").unlink()
    with pytest.raises(AgentKitError, match=r"startup kit file '.*/client.key' does not exist"):
        trainer_tls_context(ws, "site-1")
    with pytest.raises(AgentKitError, match=r"client.crt' is the certificate of 'site-2' "
                                            r"\(role 'trainer'\), not of site 'site-1'"):
        trainer_tls_context(workspace(tmp_path, site_kits, "site-2"), "site-1")


@pytest.mark.timeout(30)
async def test_a_job_runs_over_mutual_tls_and_status_says_so(tmp_path: Path,
                                                             site_kits: Path) -> None:
    network = metropolis_hastings(path(2))
    nodes = {n: TaskExchanger(f"{n}-trainer", tls=AgentTls.load(site_kits, n), **HB)
             for n in network.node_ids}
    rows: list[dict[str, Any]] = []

    async def trainer(site: str) -> None:
        node = nodes[site]
        await node.agent.wait_listening()
        context = trainer_tls_context(workspace(tmp_path, site_kits, site), site)
        address = agent_environment(node.agent)["PEERFLOW_AGENT_ADDRESS"]
        assert address.startswith("localhost:")  # the host the kit's certificate names
        async with AsyncAgent(address, node.agent.agent_id,
                              ssl_context=context, heartbeat_timeout=1.0) as agent:
            task = await agent.get_task()
            assert task is not None
            rows.extend(agent_status([node]))
            await agent.submit_result(TaskResult({"site": site, "data": task.data}))
            with pytest.raises(AgentClosed):
                await agent.get_task()

    with anyio.fail_after(20):
        async with anyio.create_task_group() as group:
            for site in nodes:
                group.start_soon(trainer, site)
            result = await peerflow.run(Config(network, {"iterations": 1}), nodes)
    assert result.ok, result.reason
    assert result.results["site-2"] == {"site": "site-2", "data": {"iterations": 1}}
    assert {(r["node"], r["secure"], r["connected"]) for r in rows} == {
        ("site-1", True, True), ("site-2", True, True)}
    assert all(r["peer"].startswith(("127.0.0.1:", "[::1]:")) for r in rows)


async def refused_by(site_kits: Path, context: ssl.SSLContext | None, *,
                     host: str = "localhost") -> tuple[str, AgentServer]:
    """Start site-1's agent server; return why an agent with ``context`` is refused."""
    server = AgentServer("trainer", settings=LinkSettings(**HB),
                         tls=AgentTls.load(site_kits, "site-1"))
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            port = (await group.start(server.serve, "site-1"))[1]
            with pytest.raises((AgentRefused, AgentClosed)) as refused:
                await AsyncAgent((host, port), "trainer", ssl_context=context,
                                 heartbeat_timeout=1.0).start()
            group.cancel_scope.cancel()
    return str(refused.value), server


@pytest.mark.timeout(30)
async def test_the_node_refuses_a_trainer_with_another_sites_kit_naming_it(
        tmp_path: Path, site_kits: Path) -> None:
    context = trainer_tls_context(workspace(tmp_path, site_kits, "site-2"), "site-2")
    why, server = await refused_by(site_kits, context)
    expected = ("node 'site-1' refused agent 'trainer': its certificate is site 'site-2''s "
                "trainer's, not site 'site-1''s")
    assert why == expected
    assert server.refused == [expected]


@pytest.mark.timeout(30)
async def test_the_node_refuses_a_certificate_of_another_role_naming_it(site_kits: Path) -> None:
    transport_kit = TlsConfig.from_dir(site_kits, "site-1")  # the node's own transport identity
    context = trainer_tls_context(site_kits, "site-1")
    context.load_cert_chain(str(transport_kit.cert), str(transport_kit.key))
    why, _ = await refused_by(site_kits, context)
    assert why.endswith("its certificate is 'site-1''s of role 'node', not a trainer's "
                        "(client.crt of the site's startup kit)")


@pytest.mark.timeout(30)
async def test_the_node_refuses_a_trainer_without_a_certificate(site_kits: Path) -> None:
    root = site_kits / "site-1" / "startup" / "rootCA.pem"
    context = ssl.create_default_context(cafile=str(root))
    why, _ = await refused_by(site_kits, context)
    assert why == ("node 'site-1' refused agent 'trainer': it presented no certificate: a "
                   "trainer of site 'site-1' needs secure mode with the site's startup kit")


@pytest.mark.timeout(30)
async def test_a_kit_of_another_project_is_refused_at_the_tls_handshake_both_ways(
        site_kits: Path, foreign: Path) -> None:
    why, server = await refused_by(site_kits, trainer_tls_context(foreign, "site-1"))
    assert why.startswith("TLS with the node at localhost:") and "startup kit" in why
    assert "ended during the TLS handshake" in server.refused[0]  # the trainer refused first
    context = trainer_tls_context(foreign, "site-1")  # trusts our node, presents theirs
    context.load_verify_locations(str(site_kits / "site-1" / "startup" / "rootCA.pem"))
    why, server = await refused_by(site_kits, context)
    assert why.startswith("TLS with the node failed:") and "startup kit" in why
    assert len(server.refused) == 1 and "its TLS certificate failed" in server.refused[0]


@pytest.mark.timeout(30)
async def test_the_trainer_refuses_a_node_whose_certificate_names_another_host(
        tmp_path: Path) -> None:
    far = tmp_path / "far"
    provision(project_from_dict({"nodes": ["site-1"],
                                 "listening_hosts": {"site-1": "site-1.example.com"}}), far)
    assert AgentTls.load(far, "site-1").host == "site-1.example.com"
    why, _ = await refused_by(far, trainer_tls_context(far, "site-1"), host="127.0.0.1")
    assert "TLS with the node at 127.0.0.1:" in why and "mismatch" in why.lower()


@pytest.mark.timeout(30)
async def test_a_plain_trainer_is_refused_by_a_secure_node_naming_why(site_kits: Path) -> None:
    why, server = await refused_by(site_kits, None)
    assert "no node admitted agent 'trainer'" in why
    assert server.refused and "it does not speak TLS" in server.refused[0]
    assert "a trainer needs secure mode" in server.refused[0]


@pytest.mark.timeout(30)
async def test_a_trainer_certificate_cannot_join_a_run_as_its_site(site_kits: Path) -> None:
    startup = site_kits / "site-1" / "startup"
    trainer_kit = TlsConfig(startup / "rootCA.pem", startup / "client.crt",
                            startup / "client.key")
    async with TcpTransport("server", run_id="run-1", joiners={"site-1"},
                            tls=TlsConfig.from_dir(site_kits, "server")) as controller, \
            TcpTransport("site-1", tls=trainer_kit, connect_timeout=2) as intruder:
        intruder.add_route("server", str(controller.address))
        with anyio.fail_after(10), pytest.raises(TransportError, match="role 'trainer'"):
            await intruder.connect("server")  # the trainer's kit holds no node's certificate
        assert controller.connections() == []
