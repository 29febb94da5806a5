"""Suite-wide settings: every in-memory envelope goes through the codec (strict mode)."""

from __future__ import annotations

import logging
import os

os.environ["PEERFLOW_STRICT"] = "1"


def pytest_configure(config: object) -> None:
    logging.getLogger("peerflow").setLevel(logging.INFO)
