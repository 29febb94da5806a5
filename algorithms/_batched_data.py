"""Reading the nodes' loaders in bulk: the batches a loader gives, without its per-batch cost.

Iterating a ``DataLoader`` costs tens of microseconds a batch; a thousand nodes pay
it a thousand times an iteration. A plain one (a ``TensorDataset``, batches of
indices from its sampler, no workers, no collation) gives ``dataset[indices]``: so
``epoch`` reads its sampler directly, drawing what its iterator would draw first
(a seed from the loader's generator, or torch's global one), so that every
generator ends where iterating the loader leaves it. Any other loader is iterated.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset, default_convert


def plain(data: Iterable[Any]) -> bool:
    """Whether ``data`` is a DataLoader whose batches are ``dataset[sampler's indices]``."""
    return (isinstance(data, DataLoader) and isinstance(data.dataset, TensorDataset)
            and data.batch_size is None and data.num_workers == 0
            and data.collate_fn is default_convert)


def epoch(data: Iterable[Any]) -> Iterator[Any]:
    """One epoch of ``data``'s batches, as iterating it gives them."""
    if not plain(data):
        return iter(data)
    assert isinstance(data, DataLoader)
    indices = iter(data.sampler)
    # The base seed every DataLoader iterator draws (after the sampler's iter()).
    torch.empty((), dtype=torch.int64).random_(generator=data.generator)
    dataset = data.dataset
    return (dataset[index] for index in indices)
