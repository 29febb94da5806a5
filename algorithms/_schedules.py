"""Time-varying topologies: schedule builders and the mixing matrix of each iteration.

A schedule (``peerflow.actors.Schedule``) repeats a period of networks; iteration t
mixes with W(t) = W(t mod period). Builders:

- ``exponential_one_peer`` (Ying et al. 2021, "Exponential graph is provably efficient
  for decentralized deep training"): at iteration t node i sends to i + 2^(t mod tau),
  tau = ceil(log2 n), and mixes half and half with the one node it hears from. One
  message per node per iteration; for n a power of two, a period's product is J/n:
  exact averaging in log2(n) iterations.
- ``random_matching``: each iteration a seeded random (maximum) matching; matched
  pairs average, an unmatched node keeps its value.
- ``cycle_of_graphs``: a fixed list of networks in turn.

``MixingSchedule`` gives W(t) as a sparse matrix (``matrix(t)``), built once per phase.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from peerflow.actors import Neighbor, Network, Node, Schedule

from ._mixing import (
    describe,
    is_doubly_stochastic,
    second_largest_eigenvalue_modulus,
    sparse_mixing_matrix,
)
from ._topology import _count

ScheduleBuilder = Callable[[int, int], Schedule]
DEFAULT_MATCHINGS = 32
"""Matchings ``random_matching`` draws before it repeats them."""


def exponential_one_peer(n: int, prefix: str = "site-") -> Schedule:
    """One-peer exponential graph: W(t) = (I + P^(2^(t mod tau))) / 2, P the cyclic shift.

    Node i hears from i - 2^k and sends to i + 2^k (k = t mod tau, tau = ceil(log2 n)),
    each weight 1/2: every W(t) is doubly stochastic. One node: no link, period 1.

    Raises:
        ValueError: n is not an integer >= 1.
    """
    n = _count("n", n)
    tau = max(1, math.ceil(math.log2(n)))
    ids = [f"{prefix}{i + 1}" for i in range(n)]
    return Schedule(tuple(_one_peer(ids, 2**k) for k in range(tau)))


def random_matching(n: int, seed: int = 0, period: int = DEFAULT_MATCHINGS,
                    prefix: str = "site-") -> Schedule:
    """``period`` seeded random matchings in turn; matched pairs average (weights 1/2).

    Matching t pairs the nodes of a permutation drawn from ``SeedSequence([seed, t])``
    two by two (with n odd, one node sits out), so the same seed gives the same
    schedule in every process. Each W(t) is symmetric and doubly stochastic.

    Raises:
        ValueError: n, seed or period out of range.
    """
    n, seed, period = _count("n", n), _count("seed", seed, minimum=0), _count("period", period)
    ids = [f"{prefix}{i + 1}" for i in range(n)]
    graphs = []
    for t in range(period):
        order = np.random.default_rng(np.random.SeedSequence([seed, t])).permutation(n)
        partner = {int(a): int(b) for a, b in zip(order[0:-1:2], order[1::2], strict=True)}
        partner |= {b: a for a, b in partner.items()}
        graphs.append(Network(tuple(
            Node(ids[i], (Neighbor(ids[partner[i]], 0.5),) if i in partner else ())
            for i in range(n))))
    return Schedule(tuple(graphs))


def cycle_of_graphs(networks: Sequence[Network]) -> Schedule:
    """The networks in turn, one per iteration (all over the same nodes).

    Raises:
        ConfigError: no network, or networks over different nodes.
    """
    graphs: list[Network] = []
    for network in networks:  # a schedule in the list contributes its whole period
        graphs.extend(network.networks if isinstance(network, Schedule) else [network])
    return Schedule(tuple(graphs))


SCHEDULES: dict[str, ScheduleBuilder] = {
    "exponential-one-peer": lambda n, seed: exponential_one_peer(n),
    "random-matching": lambda n, seed: random_matching(n, seed),
}


class MixingSchedule:
    """The mixing matrix of every iteration of a network (static: the same at every t).

    Args:
        network: a ``Network`` or a ``Schedule``; missing weights are the
            Metropolis-Hastings weights ``run`` would set.
        push: the column-stochastic push matrices A(t) (``column_stochastic``) instead
            of the row-stochastic W(t).

    Raises:
        ConfigError: a network is invalid.
    """

    def __init__(self, network: Network, push: bool = False) -> None:
        graphs = network.networks if isinstance(network, Schedule) else (network,)
        built = [_push_matrix(graph) if push else sparse_mixing_matrix(graph)
                 for graph in graphs]
        self.ids: list[str] = built[0][1]
        self.matrices: tuple[sp.csr_array, ...] = tuple(m for m, _ in built)

    @property
    def period(self) -> int:
        """Iterations after which W(t) repeats."""
        return len(self.matrices)

    def matrix(self, t: int) -> sp.csr_array:
        """W(t), sparse (row i: node i's in-weights at t, self weight on the diagonal)."""
        return self.matrices[t % len(self.matrices)]

    def product(self) -> np.ndarray:
        """W(period - 1) ... W(1) W(0) as a dense array: one period's mixing."""
        result = np.eye(len(self.ids))
        for matrix in self.matrices:
            result = matrix @ result
        return np.asarray(result)


def _push_matrix(graph: Network) -> tuple[sp.csr_array, list[str]]:
    """A[j, i] = 1 / (outdeg_i + 1) for j = i or an out-neighbour of i (sender's shares)."""
    ids = graph.node_ids
    index = {node_id: k for k, node_id in enumerate(ids)}
    rows, cols, data = [], [], []
    for node_id, targets in graph.out_neighbors().items():
        i = index[node_id]
        for j in (i, *(index[target] for target in targets)):
            rows.append(j)
            cols.append(i)
            data.append(1.0 / (len(targets) + 1))
    return sp.csr_array((data, (rows, cols)), shape=(len(ids), len(ids))), list(ids)


def _one_peer(ids: list[str], hop: int) -> Network:
    n = len(ids)
    if n == 1:
        return Network((Node(ids[0]),))
    return Network(tuple(Node(ids[i], (Neighbor(ids[(i - hop) % n], 0.5),))
                         for i in range(n)))


@dataclass(frozen=True, slots=True)
class ScheduleReport:
    """Figures of a time-varying network (``peerflow topology`` on a schedule).

    ``product_*`` are of one period's product P = W(period-1)...W(0):
    ``product_sigma2`` = ||(I - J/n) P (I - J/n)||_2 is how much one period shrinks the
    distance to the average at worst (the second singular value of P when it is doubly
    stochastic); ``rate_per_iteration`` is its period-th root, comparable with a static
    network's SLEM. Both are nan above ``PRODUCT_NODES`` nodes.
    """

    nodes: int
    period: int
    edges: int
    messages_per_iteration: float
    directed: bool
    doubly_stochastic: bool
    jointly_connected: bool
    product_slem: float
    product_sigma2: float
    rate_per_iteration: float


PRODUCT_NODES = 2_000
"""Above this many nodes a schedule's dense period product is not formed."""


def describe_schedule(schedule: Schedule) -> ScheduleReport:
    """Report a schedule's period, traffic, stochasticity and the product's contraction.

    Raises:
        ConfigError: a network of the schedule is invalid.
    """
    mixings = MixingSchedule(schedule)
    union = describe(schedule)
    slem = sigma2 = math.nan
    if len(mixings.ids) <= PRODUCT_NODES:
        product = mixings.product()
        slem = second_largest_eigenvalue_modulus(product)
        centred = product - product.mean(axis=0)  # (I - J/n) P
        sigma2 = float(np.linalg.norm(centred - centred.mean(axis=1, keepdims=True), 2))
    arcs = sum(len(node.neighbors) for graph in schedule.networks for node in graph.nodes)
    return ScheduleReport(
        nodes=union.nodes, period=schedule.period, edges=union.edges,
        messages_per_iteration=arcs / schedule.period, directed=union.directed,
        doubly_stochastic=all(is_doubly_stochastic(m) for m in mixings.matrices),
        jointly_connected=union.strongly_connected, product_slem=slem, product_sigma2=sigma2,
        rate_per_iteration=sigma2 ** (1 / schedule.period))
