"""Mutual TLS: only holders of a project certificate join, under their certificate's name."""

from __future__ import annotations

import ssl
from pathlib import Path

import anyio
import pytest
from _net import RUN, make_kits

from peerflow.transport import (
    Project,
    ProvisionError,
    TcpTransport,
    TlsConfig,
    TlsConfigError,
    TransportError,
    load_project,
    parse_address,
    project_from_dict,
    provision,
)


@pytest.fixture(scope="module")
def foreign_kits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_kits(tmp_path_factory.mktemp("foreign"))


async def test_a_node_whose_certificate_is_from_another_ca_cannot_join(
        kits: Path, foreign_kits: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with TcpTransport("controller", run_id=RUN, joiners={"site-1"},
                            tls=TlsConfig.from_dir(kits, "controller")) as controller, \
            TcpTransport("site-1", tls=TlsConfig.from_dir(foreign_kits, "site-1"),
                         connect_timeout=2) as rogue:
        rogue.add_route("controller", str(controller.address))
        with anyio.fail_after(10), pytest.raises(TransportError, match="cannot connect"):
            await rogue.connect("controller")
        assert controller.connections() == []
    assert "dropped incoming connection" in caplog.text


async def test_a_plain_tcp_client_is_refused_before_any_envelope_is_read(kits: Path) -> None:
    delivered: list[object] = []
    async with TcpTransport("controller", run_id=RUN, joiners={"site-1"},
                            tls=TlsConfig.from_dir(kits, "controller")) as controller, \
            TcpTransport("site-1", connect_timeout=1) as plain:
        controller.register("controller", delivered.append)
        plain.add_route("controller", str(controller.address))
        with anyio.fail_after(10), pytest.raises(TransportError):
            await plain.connect("controller")
    assert delivered == []


async def test_a_hello_naming_someone_else_than_the_certificate_is_refused(kits: Path) -> None:
    async with TcpTransport("controller", run_id=RUN, joiners={"site-1", "site-2"},
                            tls=TlsConfig.from_dir(kits, "controller")) as controller, \
            TcpTransport("site-2", tls=TlsConfig.from_dir(kits, "site-1"),
                         connect_timeout=2) as liar:
        liar.add_route("controller", str(controller.address))
        with anyio.fail_after(10), pytest.raises(
                TransportError, match="hello names node 'site-2' but the certificate names "
                                      "'site-1'"):
            await liar.connect("controller")


async def test_a_tls_connection_reports_its_identity_and_tls(kits: Path) -> None:
    async with TcpTransport("controller", run_id=RUN, joiners={"site-1"},
                            tls=TlsConfig.from_dir(kits, "controller")) as controller, \
            TcpTransport("site-1", tls=TlsConfig.from_dir(kits, "site-1")) as node:
        node.add_route("controller", str(controller.address))
        with anyio.fail_after(10):
            await node.connect("controller")
            while not controller.connections():
                await anyio.sleep(0.01)
        assert node.connections()[0] | {"address": None} == {
            "peer": "controller", "address": None, "tls": True, "direction": "out"}
        assert controller.connections()[0]["peer"] == "site-1"


def test_provision_reads_nvflare_shaped_projects_and_writes_one_kit_each(tmp_path: Path) -> None:
    project_file = tmp_path / "project.yml"
    project_file.write_text("name: demo\nparticipants:\n"
                            "  - {name: server1, type: server}\n"
                            "  - {name: site-1, type: client}\n"
                            "  - {name: admin@x, type: admin}\n")
    project = load_project(project_file)
    assert project == Project("demo", "server1", ("site-1",), ("admin@x",))
    kits = provision(project, tmp_path / "out")
    assert sorted(kits) == ["admin@x", "server1", "site-1"]
    assert TlsConfig.from_dir(tmp_path / "out", "site-1").name == "site-1"
    assert (tmp_path / "out" / "site-1" / "key.pem").stat().st_mode & 0o777 == 0o600
    context = TlsConfig.from_dir(kits["server1"]).server_context()
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_bad_projects_and_kits_are_named(tmp_path: Path) -> None:
    with pytest.raises(ProvisionError, match="named more than once: \\['a'\\]"):
        project_from_dict({"nodes": ["a", "a"]})
    with pytest.raises(ProvisionError, match="nodes must be a non-empty list"):
        project_from_dict({"controller": "c"})
    with pytest.raises(TlsConfigError, match="does not exist"):
        TlsConfig.from_dir(tmp_path, "site-1")
    assert parse_address("tls://127.0.0.1:1").scheme == "tls"
