"""Fixtures of the algorithm tests: the transports runs go over, and one torch thread."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest
import torch

TRANSPORTS = ["memory", pytest.param("tcp", marks=pytest.mark.skipif(
    importlib.util.find_spec("peerflow.transport.tcp") is None, reason="no TCP transport"))]
"""Every transport a run's results must not depend on: add one here to test it too."""


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: intra-op threads only contend on 2 cores
    yield
    torch.set_num_threads(threads)
