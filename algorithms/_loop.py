"""One executor loop for every algorithm: consensus, push-sum and the learning ones.

An ``Algorithm`` is pure functions over a small state (optax style); the loop
composes it with a ``Mixing`` (row or push) and an ``Objective`` (where gradients
come from), and each iteration runs:

    payload        = share(send(state))          what this node sends
    mixed          = mix(payload, exchange(payload))
    at, pending    = query(state, mixed)
    state          = update(pending, None if at is None else gradient(at))

The step takes gradient values in two phases, ``query`` (where the gradient is
wanted, None for none) then ``update``, so a gradient may come from anywhere,
awaited: a torch model on its next batch, an external agent, or nothing at all.
Averaging algorithms have no local step (``query`` None: the mixed payload is the
next state) and send their state as it is (``send`` None): consensus is the hot
path, and each function call the loop makes costs a measurable share of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import cycle
from typing import Any, NamedTuple, Protocol

from peerflow.actors import SyncAlgorithmExecutor

from ._mixers import Mixing, push_mixing, row_mixing, sending
from ._trees import Tree


class Algorithm(NamedTuple):
    """A decentralized algorithm as pure functions.

    Attributes:
        init: initial state from the node's initial parameters.
        send: the payload to share, computed from the state alone (None: the state).
        query: from the state and the mixed payload, where the gradient is wanted
            (None: no gradient) and what ``update`` needs besides it. None: no local
            step, the mixed payload is the next state.
        update: the next state from what ``query`` kept and the gradient there.
        push: mix with sender-side column-stochastic weights (directed graphs).
        receive: what a payload, the node's own or one received, becomes before it is
            mixed (None: itself); compressed payloads are decompressed here.
    """

    init: Callable[[Any], Any]
    send: Callable[[Any], Tree] | None = None
    query: Callable[[Any, Tree], tuple[Tree | None, Any]] | None = None
    update: Callable[[Any, Tree | None], Any] | None = None
    push: bool = False
    receive: Callable[[Tree], Tree] | None = None


def receiving(mix: Callable[[Tree, Mapping[str, Tree]], Tree],
              receive: Callable[[Tree], Tree]) -> Callable[[Tree, Mapping[str, Tree]], Tree]:
    """``mix`` of the payloads as ``receive`` makes them."""
    def mixed(own: Tree, received: Mapping[str, Tree]) -> Tree:
        return mix(receive(own), {node: receive(value) for node, value in received.items()})

    return mixed


class Objective(Protocol):
    """This node's local objective: the source of gradient values."""

    async def gradient(self, x: Tree) -> Tree:
        """The local gradient at ``x`` (on the next batch, for stochastic objectives)."""


class NoObjective:
    """The objective of averaging algorithms, which never ask for a gradient."""

    async def gradient(self, x: Tree) -> Tree:
        """Never called by an averaging algorithm.

        Raises:
            TypeError: always: there is no local objective.
        """
        raise TypeError("this node has no local objective: its algorithm must not ask "
                        f"for a gradient, got a request at {x!r:.80}")


NO_OBJECTIVE = NoObjective()


def consensus() -> Algorithm:
    """x <- W x: the state is the value, sent as it is (NVFlare's ``ConsensusExecutor``)."""
    return Algorithm(lambda x0: x0)


def push_sum() -> Algorithm:
    """Push-sum: {x, w} <- A {x, w} with w(0) = 1; x / w converges to the true average."""
    return Algorithm(lambda x0: {"x": x0, "w": 1.0}, push=True)


class StepExecutor(SyncAlgorithmExecutor):
    """An executor that runs an ``Algorithm`` through ``run_steps``."""

    def mixing(self, push: bool, iteration: int = 0) -> Mixing:
        """Push mixing over the out-degree, or row mixing with the config's weights, both
        of ``iteration`` (the same at every iteration of a static network).

        Raises:
            ValueError: row mixing, and an in-neighbour has no weight.
        """
        phase = self.phase(iteration)
        if push:
            return push_mixing(len(phase.out_neighbors), [n.id for n in phase.neighbors])
        missing = [n.id for n in phase.neighbors if n.weight is None]
        if missing:
            raise ValueError(f"node {self.id!r}: neighbours {missing} have no weight")
        return row_mixing(phase.weight, [(n.id, n.weight) for n in phase.neighbors])

    def sent_bytes(self) -> int:
        """Bytes the transport has sent for this node so far (``Transport.sent_bytes``:
        0 on a transport that does not count)."""
        return self.runtime.transport.sent_bytes(self.name)

    async def run_steps(self, algorithm: Algorithm, state: Any, objective: Objective,
                        iterations: int, observe: Callable[[Any], object]) -> Any:
        """Run ``iterations`` steps from ``state``, calling ``observe`` with every new
        state; return the final state. Iteration t mixes with iteration t's mixing."""
        mixings = [self.mixing(algorithm.push, t) for t in range(self.period)]
        receive = algorithm.receive
        steps = cycle([(sending(algorithm.send, m),
                        m.mix if receive is None else receiving(m.mix, receive))
                       for m in mixings])
        query, update, gradient = algorithm.query, algorithm.update, objective.gradient
        exchange = self.exchange
        # the hot loop: locals only, no attribute look-ups
        for t, (send, mix) in zip(range(iterations), steps):  # noqa: B905 (cycle is endless)
            payload = state if send is None else send(state)
            mixed = mix(payload, await exchange(payload, t))
            if query is None:
                state = mixed
            else:
                at, pending = query(state, mixed)
                state = update(pending, None if at is None else await gradient(at))
            observe(state)
        return state
