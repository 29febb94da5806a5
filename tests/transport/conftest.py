"""Fixtures shared by the transport tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from _net import make_kits


@pytest.fixture(scope="module")
def kits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project CA and a TLS kit for every name the transport tests use."""
    return make_kits(tmp_path_factory.mktemp("kits"))
