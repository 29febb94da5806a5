"""NVFlare's documented FlareAgent trainer, unchanged (``secure_mode=True``), against a node
serving mutual TLS with the site's provisioned startup kit."""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
from pathlib import Path

import anyio
import numpy as np
import pytest

from peerflow.actors import Controller, Runtime
from peerflow.agents import AgentTls, TaskExchanger, start, stop, wait_exit
from peerflow.transport import MemoryTransport

TRAINER = Path(__file__).with_name("flare_trainer.py")
AGENT_ID = "ext_trainer_1"
NUMPY_KEY = "numpy_key"
def workspace(tmp_path: Path, site_kits: Path | None, site: str) -> Path:
    """The trainer's workspace: a copy of the site's ``startup`` folder (none if no kits)."""
    folder = tmp_path / f"workspace-{site}"
    folder.mkdir()
    if site_kits is not None:
        shutil.copytree(site_kits / site / "startup", folder / "startup")
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def secure_node(site_kits: Path) -> tuple[TaskExchanger, str]:
    """Site-1's node serving TLS, and the address its trainer dials (the kit's host)."""
    port = free_port()
    node = TaskExchanger(AGENT_ID, f"127.0.0.1:{port}", tls=AgentTls.load(site_kits, "site-1"),
                         heartbeat_interval=0.5, heartbeat_timeout=30)
    return node, f"localhost:{port}"


async def start_trainer(site: str, folder: Path, address: str, log: Path) -> anyio.abc.Process:
    """The trainer as documented, its --workspace the folder holding the site's kit."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PEERFLOW_")}
    argv = [sys.executable, str(TRAINER), "--workspace", str(folder), "--site_name", site,
            "--agent_id", AGENT_ID]
    return await start(argv, {**env, "PEERFLOW_AGENT_ADDRESS": address}, log)


@pytest.mark.timeout(60)
async def test_the_documented_trainer_trains_over_mutual_tls_with_its_startup_kit(
        tmp_path: Path, site_kits: Path) -> None:
    assert "secure_mode=True" in TRAINER.read_text()
    node, address = secure_node(site_kits)
    log = tmp_path / "trainer.log"
    with anyio.fail_after(50):
        async with Runtime(MemoryTransport(strict=True)) as runtime:
            await runtime.spawn(node, "site-1")
            controller = await runtime.spawn(Controller({"site-1": node}))
            process = await start_trainer("site-1", workspace(tmp_path, site_kits, "site-1"),
                                          address, log)
            try:
                weights = np.array([0.5, 1.5])
                for _ in range(2):
                    answers = await controller.broadcast_and_wait(
                        "train", {NUMPY_KEY: weights}, timeout=30)
                    weights = answers["site-1"][NUMPY_KEY]
                status = node.agent.status()
                await node.agent.say_goodbye("the job is over")
                await wait_exit(process, 10)
            finally:
                await stop(process, grace=5)
    assert process.returncode == 0, log.read_text()[-2000:]
    assert weights.tolist() == [2.5, 3.5]
    assert status["secure"] and status["connected"] and not node.agent.refused
    assert log.read_text().count("result submitted: True") == 2


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("site", "kit", "trainer_says", "node_says"), [
    ("site-1", False, r"no startup kit of site 'site-1': '.*/startup/rootCA\.pem' does not "
                      r"exist", None),
    ("site-2", True, re.escape("AgentRefused: node 'site-1' refused agent 'ext_trainer_1': "
                               "its certificate is site 'site-2''s trainer's, not site "
                               "'site-1''s"),
     "its certificate is site 'site-2''s trainer's, not site 'site-1''s"),
])
async def test_a_trainer_without_the_sites_kit_is_refused_naming_why(
        tmp_path: Path, site_kits: Path, site: str, kit: bool, trainer_says: str,
        node_says: str | None) -> None:
    node, address = secure_node(site_kits)
    log = tmp_path / "trainer.log"
    with anyio.fail_after(50):
        async with anyio.create_task_group() as group:
            await group.start(node.agent.serve, "site-1")
            kits = site_kits if kit else None
            process = await start_trainer(site, workspace(tmp_path, kits, site),
                                          address, log)
            try:
                await wait_exit(process, 30)
            finally:
                await stop(process, grace=5)
            group.cancel_scope.cancel()
    out = log.read_text()
    assert process.returncode != 0 and "result submitted" not in out
    assert re.search(trainer_says, out), out[-2000:]
    if node_says is None:
        assert node.agent.refused == [] and node.agent.connected_since is None
    else:
        assert len(node.agent.refused) == 1 and node_says in node.agent.refused[0]
