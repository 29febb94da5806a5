"""Built-in problems for the CLI, tests and benchmarks, generated locally and seeded.

- ``two_moons``: two moons after NVFlare's example, smaller and faster (6 nodes, 320
  samples and batches of 32 per node, an MLP 2-32-32-2, cross-entropy), data drawn
  like scikit-learn's ``make_moons`` without needing it.
- ``least_squares``: a heterogeneous linear regression in float64, full-batch, whose
  optimum (of the mean of the local losses) is known in closed form.
- ``nvflare-two-moons``: NVFlare's own two-moons GT example, draw for draw
  (``_nvflare_moons``; needs scikit-learn).
- ``blobs``: Gaussian blobs split unevenly (sizes and labels skewed per node),
  softmax regression; every node's epoch is 8 batches, of sizes in proportion.

A ``Problem`` keeps arrays, not loaders: every ``node_kwargs`` call builds fresh,
seeded loaders and a freshly seeded model, so runs of one problem repeat exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler, TensorDataset

Arrays = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Problem:
    """A decentralized learning problem: one training set per node and a shared test set.

    Attributes:
        optimum: the flat minimizer of the mean of the local losses, where known.
        gradients: full-batch local gradients, row i at row i of a (nodes, dim) array.
        objective: the mean of the local losses at a flat parameter vector.
    """

    name: str
    model: Callable[[], nn.Module]
    loss: Callable[[], nn.Module]
    train: tuple[Arrays, ...]
    test: Arrays
    batch_size: int | tuple[int, ...] | None
    stepsize: float
    iterations: int
    seed: int = 0
    same_init: bool = True
    classification: bool = False
    optimum: np.ndarray | None = None
    gradients: Callable[[np.ndarray], np.ndarray] | None = None
    objective: Callable[[np.ndarray], float] | None = None
    node_parts: Callable[[Problem, int], dict[str, Any]] | None = None
    """Builds a node's executor arguments itself, instead of ``node_kwargs``'s recipe
    (a problem that replays another framework's random draws)."""

    @property
    def nodes(self) -> int:
        return len(self.train)

    def node_model(self, node: int) -> nn.Module:
        """A fresh model for ``node``: the same initial model at every node, unless
        ``same_init`` is false (as in NVFlare's simulator, where each client process
        starts from torch's default seed)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed * 1000 + (0 if self.same_init else node + 1))
            return self.model()

    def node_kwargs(self, node: int) -> dict[str, Any]:
        """model, loss, train_dataloader, test_dataloader and train_eval_dataloader for an
        executor of ``node``."""
        if self.node_parts is not None:
            return self.node_parts(self, node)
        size = self.batch_size[node] if isinstance(self.batch_size, tuple) else self.batch_size
        return {"model": self.node_model(node), "loss": self.loss(),
                "train_dataloader": loader(self.train[node], size, seed=self.seed * 1000 + node),
                "test_dataloader": evaluation_loader(self.test),
                "train_eval_dataloader": evaluation_loader(self.train[node])}


def loader(arrays: Arrays, batch_size: int | None, seed: int | None = None) -> DataLoader:
    """A DataLoader over (features, labels), whole batches at a time (None: one batch).

    Seeded: reshuffled every epoch by its own generator. Each batch is one indexing
    of the tensors (a slice, or a tensor of indices), with no per-sample collation.
    """
    dataset = TensorDataset(*(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays))
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    return DataLoader(dataset, sampler=BatchIndices(len(dataset), batch_size, generator),
                      batch_size=None)


def evaluation_loader(arrays: Arrays) -> DataLoader:
    """The whole of (features, labels) as one batch, in order, for evaluation.

    Its DataLoader draws the seed each iteration takes from a generator of its own,
    so evaluating draws nothing from torch's global generator or a training one.
    """
    dataset = TensorDataset(*(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays))
    return DataLoader(dataset, sampler=BatchIndices(len(dataset), None), batch_size=None,
                      generator=torch.Generator().manual_seed(0))


class BatchIndices(Sampler[Any]):
    """Batches of indices: slices in order, or chunks of a fresh random permutation."""

    def __init__(self, size: int, batch_size: int | None,
                 generator: torch.Generator | None = None) -> None:
        self.size, self.batch_size = size, batch_size or size
        self.generator = generator

    def __len__(self) -> int:
        return -(-self.size // self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        starts = range(0, self.size, self.batch_size)
        if self.generator is None:
            return (slice(start, start + self.batch_size) for start in starts)
        order = torch.randperm(self.size, generator=self.generator)
        return (order[start:start + self.batch_size] for start in starts)


def flatten(params: Mapping[str, torch.Tensor]) -> np.ndarray:
    """Concatenate parameters, in order, into one float64 vector."""
    return np.concatenate([p.detach().cpu().reshape(-1).double().numpy()
                           for p in params.values()])


def accuracy(model: nn.Module, data: DataLoader) -> float:
    """Share of samples whose arg-max prediction is their label."""
    correct = total = 0
    with torch.no_grad():
        for features, labels in data:
            correct += int((model(features).argmax(dim=1) == labels).sum())
            total += len(labels)
    return correct / max(total, 1)


def make_moons(samples: int, noise: float, rng: np.random.Generator) -> Arrays:
    """Two interleaving half circles with Gaussian noise, as scikit-learn draws them."""
    outer, inner = samples // 2, samples - samples // 2
    a, b = np.linspace(0, np.pi, outer), np.linspace(0, np.pi, inner)
    points = np.vstack([np.c_[np.cos(a), np.sin(a)], np.c_[1 - np.cos(b), 0.5 - np.sin(b)]])
    labels = np.r_[np.zeros(outer), np.ones(inner)].astype(np.int64)
    order = rng.permutation(samples)
    points = points[order] + rng.normal(scale=noise, size=(samples, 2))
    return points.astype(np.float32), labels[order]


def mlp(widths: tuple[int, ...] = (2, 32, 32, 2)) -> nn.Module:
    """Linear layers with ReLU between them."""
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(widths, widths[1:], strict=False):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def two_moons(nodes: int = 6, seed: int = 0, *, samples: int = 320, batch_size: int = 32,
              test_samples: int = 1000, noise: float = 0.1) -> Problem:
    """Two moons after NVFlare's example: node i draws its data from seed (seed, i)."""
    train = tuple(make_moons(samples, noise, _rng(seed, i)) for i in range(nodes))
    test = make_moons(test_samples, noise, _rng(seed, -1))
    return Problem("two-moons", mlp, nn.CrossEntropyLoss, train, test, batch_size,
                   stepsize=0.01, iterations=1000, seed=seed, classification=True)


def least_squares(nodes: int = 6, seed: int = 0, *, dim: int = 5, samples: int = 40,
                  noise: float = 0.1) -> Problem:
    """Linear regression with node-specific inputs and true coefficients, float64.

    Node i's loss is the mean squared error over its samples, full batch; the
    optimum of the mean of the local losses solves the normal equations.
    """
    train = tuple(_regression_data(_rng(seed, i), dim, samples, noise) for i in range(nodes))
    test = _regression_data(_rng(seed, -1), dim, samples, noise)
    design = [np.c_[x, np.ones(len(x))] for x, _ in train]
    hessians = np.array([2 * a.T @ a / len(a) for a in design])
    targets = [y[:, 0] for _, y in train]
    offsets = np.array([2 * a.T @ y / len(a) for a, y in zip(design, targets, strict=True)])
    optimum = np.linalg.solve(hessians.sum(axis=0), offsets.sum(axis=0))

    def gradients(flat: np.ndarray) -> np.ndarray:
        return np.einsum("nij,nj->ni", hessians, flat) - offsets

    def objective(theta: np.ndarray) -> float:
        return float(np.mean([np.mean((a @ theta - y) ** 2)
                              for a, y in zip(design, targets, strict=True)]))

    return Problem("least-squares", lambda: nn.Linear(dim, 1, dtype=torch.float64),
                   nn.MSELoss, train, test, None, stepsize=0.05, iterations=300, seed=seed,
                   optimum=optimum, gradients=gradients, objective=objective)


def blobs(nodes: int = 6, seed: int = 0, *, classes: int = 3, test_samples: int = 600
          ) -> Problem:
    """Gaussian blobs split unevenly: node sizes from 24 to 240, labels skewed per node.

    Batch sizes follow the node sizes, so that every node's epoch is 8 batches.
    """
    rng = _rng(seed, -2)
    centers = rng.uniform(-4, 4, size=(classes, 2))
    sizes = np.geomspace(24, 240, nodes).astype(int) if nodes > 1 else np.array([120])
    train = tuple(_blob_data(_rng(seed, i), centers, int(size), rng.dirichlet(np.ones(classes) / 2))
                  for i, size in enumerate(sizes))
    test = _blob_data(_rng(seed, -1), centers, test_samples, np.ones(classes) / classes)
    batch_sizes = tuple(-(-int(size) // 8) for size in sizes)
    return Problem("blobs", lambda: nn.Linear(2, classes), nn.CrossEntropyLoss, train, test,
                   batch_sizes, stepsize=0.05, iterations=500, seed=seed, classification=True)


def nvflare_two_moons(nodes: int = 6, seed: int = 0) -> Problem:
    """NVFlare's own two-moons example, draw for draw (``_nvflare_moons``).

    Raises:
        ImportError: scikit-learn, which draws its data, is not installed.
    """
    from ._nvflare_moons import nvflare_two_moons as build  # imports scikit-learn

    return build(nodes, seed)


PROBLEMS: dict[str, Callable[..., Problem]] = {
    "two-moons": two_moons, "least-squares": least_squares, "blobs": blobs,
    "nvflare-two-moons": nvflare_two_moons,
}
"""Built-in problems by name; each is called as ``builder(nodes, seed)``."""


def _rng(seed: int, node: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, node + 2]))


def _regression_data(rng: np.random.Generator, dim: int, samples: int, noise: float) -> Arrays:
    features = rng.normal(loc=rng.normal(scale=0.5, size=dim), scale=rng.uniform(0.5, 1.2),
                          size=(samples, dim))
    coefficients = rng.normal(size=dim + 1)
    targets = features @ coefficients[:dim] + coefficients[dim] + rng.normal(scale=noise,
                                                                             size=samples)
    return features, targets[:, None]


def _blob_data(rng: np.random.Generator, centers: np.ndarray, samples: int,
               mix: np.ndarray) -> Arrays:
    labels = rng.choice(len(centers), size=samples, p=mix)
    points = centers[labels] + rng.normal(size=(samples, 2))
    return points.astype(np.float32), labels.astype(np.int64)
