"""Suite-wide settings: every in-memory envelope goes through the codec (strict mode)."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import scipy.sparse as sp

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
