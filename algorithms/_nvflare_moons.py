"""NVFlare's two-moons example (``examples/advanced/distributed_optimization/2-two_moons``),
draw for draw: the same data, model, initial parameters and batches.

Site i (``node`` i - 1) draws its 128 training samples with scikit-learn's
``make_moons(128, noise=0.1, random_state=i - 1)``; every site tests on
``make_moons(20, noise=0.1, random_state=42)``; the model is 2-256-256-2 with ReLU,
torch's default initialisation; batches of 64, reshuffled every epoch.

NVFlare runs each site in its own process, so each site's model, shuffles and the
seeds its DataLoaders draw all come from that process's torch generator. Here every
node shares one process, so each node gets a generator of its own that replays its
process's: seeded like the process (``torch.manual_seed(node seed)`` before the model
is built, as the recorded NVFlare run does), then drawn from in the same order as a
``DataLoader(shuffle=True)`` draws from the global one (a base seed per iteration of
any loader, then the shuffle's seed).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler, TensorDataset

from ._problems import Arrays, BatchIndices, Problem

SAMPLES, TEST_SAMPLES, TEST_STATE, NOISE, BATCH = 128, 20, 42, 0.1, 64
EXTRA = "pip install 'peerflow[nvflare]'"


class MoonsNet(nn.Module):
    """NVFlare's ``NeuralNetwork`` of the example: 2-256-256-2, ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(2, 256)
        self.fc2 = nn.Linear(256, 256)
        self.fc3 = nn.Linear(256, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class ShuffleDraws(Sampler[Any]):
    """Batches of indices as ``DataLoader(shuffle=True)`` gives them without a generator
    of its own: each epoch draws a seed from ``generator`` (standing for the process's
    global one), then shuffles with a fresh generator seeded with it."""

    def __init__(self, size: int, batch_size: int, generator: torch.Generator) -> None:
        self.size, self.batch_size, self.generator = size, batch_size, generator

    def __len__(self) -> int:
        return -(-self.size // self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        seed = int(torch.empty((), dtype=torch.int64).random_(generator=self.generator))
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(seed))
        for start in range(0, self.size, self.batch_size):
            yield order[start:start + self.batch_size]


def nvflare_two_moons(nodes: int = 6, seed: int = 0) -> Problem:
    """NVFlare's example for ``nodes`` sites; ``seed`` 0 is NVFlare's, node i drawing its
    data and seeding torch with ``seed + i``.

    Raises:
        ImportError: scikit-learn is not installed (``pip install 'peerflow[nvflare]'``).
    """
    make_moons = _make_moons()

    def moons(samples: int, state: int) -> Arrays:
        x, y = make_moons(n_samples=samples, noise=NOISE, random_state=state)
        return x.astype(np.float32), y.astype(np.int64)

    train = tuple(moons(SAMPLES, seed + i) for i in range(nodes))
    test = moons(TEST_SAMPLES, TEST_STATE)

    def node_parts(problem: Problem, node: int) -> dict[str, Any]:
        generator = torch.Generator()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + node)
            model = MoonsNet()
            generator.set_state(torch.get_rng_state())
        return {"model": model, "loss": nn.CrossEntropyLoss(),
                "train_dataloader": _loader(problem.train[node],
                                            ShuffleDraws(SAMPLES, BATCH, generator), generator),
                "test_dataloader": _loader(problem.test, BatchIndices(TEST_SAMPLES, None),
                                           generator)}

    return Problem("nvflare-two-moons", MoonsNet, nn.CrossEntropyLoss, train, test, BATCH,
                   stepsize=0.01, iterations=1000, seed=seed, classification=True,
                   node_parts=node_parts)


def _loader(arrays: Arrays, sampler: Sampler[Any], generator: torch.Generator) -> DataLoader:
    """A loader whose every iteration draws its base seed from ``generator``, as each
    iteration of a DataLoader draws one from the global generator."""
    dataset = TensorDataset(*(torch.from_numpy(a) for a in arrays))
    return DataLoader(dataset, sampler=sampler, batch_size=None, generator=generator)


def _make_moons() -> Any:
    try:
        from sklearn.datasets import make_moons
    except ImportError as exc:
        raise ImportError(f"the nvflare-two-moons problem draws its data with scikit-learn, "
                          f"which is not installed: {EXTRA}") from exc
    return make_moons
