"""Suite-wide settings: every in-memory envelope goes through the codec (strict mode)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from peerflow.transport import project_from_dict, provision

os.environ["PEERFLOW_STRICT"] = "1"


def pytest_configure(config: object) -> None:
    logging.getLogger("peerflow").setLevel(logging.INFO)


@pytest.fixture
def no_dense_algebra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any dense N x N eigen-solve, matrix power or sparse-to-dense conversion."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a dense N x N computation was attempted")

    monkeypatch.setattr(np.linalg, "eigvals", refuse)
    monkeypatch.setattr(np.linalg, "matrix_power", refuse)
    monkeypatch.setattr(sp.csr_array, "toarray", refuse)


@pytest.fixture(scope="session")
def seed_project() -> dict[str, Any]:
    """NVFlare's project.yml shape: a server and site-1 ... site-3, each listening on localhost."""
    return {"participants": [
        {"name": "server", "type": "server", "org": "nvidia", "fed_learn_port": 8002,
         "admin_port": 8003},
        *({"name": f"site-{i}", "type": "client", "org": "nvidia",
           "listening_host": "localhost"} for i in (1, 2, 3)),
    ]}


@pytest.fixture(scope="session")
def site_kits(tmp_path_factory: pytest.TempPathFactory, seed_project: dict[str, Any]) -> Path:
    """The provision output of ``seed_project``: each site's startup kit for its trainer."""
    out = tmp_path_factory.mktemp("site-kits")
    provision(project_from_dict(seed_project, "project.yml"), out)
    return out
