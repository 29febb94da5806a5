"""Fixtures of the command-line tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def restore_torch_threads() -> Iterator[None]:
    """A learning command sets torch's thread count (``--torch-threads``): put it back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
