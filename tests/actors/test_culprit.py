"""A stalled run names the node that stalled it, not a neighbour that waited on it."""

from __future__ import annotations

import random
from typing import Any

import anyio
import pytest

import peerflow
from peerflow import Config, Network
from peerflow.actors import RunResult
from peerflow.actors._waitfor import WaitState, trace
from peerflow.algorithms import ConsensusExecutor, metropolis_hastings, path, random_connected

SEEDS = range(30)
WARM_UP = 20.0


class Node(ConsensusExecutor):
    """A consensus node that may stop before sending iteration ``stall_at`` (stuck in
    its own computation). Its first iterations wait up to ``WARM_UP`` seconds (and
    connections may take the longest reconnect window): a loaded machine may take
    that long to connect many runs side by side."""

    def __init__(self, value: float, sync_timeout: float, stall_at: int | None = None) -> None:
        super().__init__(value, sync_timeout=WARM_UP)
        self.timeout, self.stall_at = sync_timeout, stall_at

    async def exchange(self, value: Any, iteration: int) -> dict[str, Any]:  # type: ignore[override]
        if iteration == self.stall_at:
            await anyio.sleep_forever()
        self.sync_timeout = WARM_UP if iteration < 2 else self.timeout
        return await super().exchange(value, iteration)


async def stalled_run(network: Network, stallers: dict[str, int], transport: str,
                      timeout: float) -> RunResult:
    executors = {node: Node(float(i), timeout, stallers.get(node))
                 for i, node in enumerate(network.node_ids)}
    with anyio.fail_after(WARM_UP + timeout + 30):  # a hang guard
        return await peerflow.run(Config(network, {"iterations": 1000}), executors, transport)


def sparse_stall(seed: int) -> tuple[Network, str, int]:
    """A sparse 8-node graph, the node that stalls and the iteration it never sends."""
    rng = random.Random(seed)
    network = metropolis_hastings(random_connected(8, seed=seed, mean_degree=2.0))
    return network, rng.choice(network.node_ids), rng.randrange(2, 8)


@pytest.mark.parametrize(("transport", "timeout", "seeds", "batch"),
                         [("memory", 0.5, SEEDS, 30), ("tcp", 1.5, SEEDS, 15),
                          ("tls", 1.5, SEEDS[:4], 4)])
async def test_a_stalled_node_is_named_in_every_seeded_run_on_sparse_graphs(
        transport: str, timeout: float, seeds: range, batch: int) -> None:
    outcomes: dict[int, tuple[str, int, RunResult]] = {}

    async def one(seed: int) -> None:
        network, bad, stall_at = sparse_stall(seed)
        outcomes[seed] = bad, stall_at, await stalled_run(network, {bad: stall_at}, transport,
                                                          timeout)

    for first in range(0, len(seeds), batch):  # runs side by side: 30 stalls in a few seconds
        async with anyio.create_task_group() as group:
            for seed in seeds[first:first + batch]:
                group.start_soon(one, seed)
    wrong = {seed: (bad, result.node, result.reason) for seed, (bad, _, result) in outcomes.items()
             if result.node != bad}
    assert not wrong, f"{len(wrong)} of {len(seeds)} runs named the wrong node: {wrong}"
    for bad, stall_at, result in outcomes.values():
        assert result.status == "aborted" and result.roots == (bad,)
        assert result.iteration == stall_at - 1
        assert (result.reason or "").startswith("stalled: ")
        assert (result.reason or "").endswith(f"waits on {bad} (it. {stall_at}) <- {bad} "
                                              f"silent since it. {stall_at - 1}")


async def test_two_stalled_nodes_are_both_named_with_their_chains() -> None:
    network = metropolis_hastings(path(7))  # site-1 - site-2 - ... - site-7
    result = await stalled_run(network, {"site-1": 3, "site-7": 5}, "memory", 0.5)
    assert set(result.roots) == {"site-1", "site-7"} and result.node in result.roots
    reason = result.reason or ""
    assert "site-2 waits on site-1 (it. 3) <- site-1 silent since it. 2" in reason
    assert "site-6 waits on site-7 (it. 5) <- site-7 silent since it. 4" in reason


def waiting(iteration: int, *on: str) -> WaitState:
    return WaitState(iteration, on, overdue=True)


def test_the_chain_runs_from_the_reporter_to_the_node_that_waits_on_no_one() -> None:
    states = {"n0": waiting(6, "n4"), "n4": waiting(5, "n2"), "n2": WaitState(4),
              "n1": waiting(6, "n4")}
    verdict = trace("n0", states)
    assert verdict is not None
    assert verdict.reason == \
        "stalled: n0 waits on n4 (it. 6) <- n4 waits on n2 (it. 5) <- n2 silent since it. 4"
    assert (verdict.node, verdict.iteration, verdict.roots) == ("n2", 4, ("n2",))


def test_a_node_that_does_not_answer_is_a_root_silent_since_its_last_value() -> None:
    verdict = trace("n0", {"n0": waiting(6, "n4"), "n4": waiting(5, "n2"), "n2": None})
    assert verdict is not None and verdict.roots == ("n2",) and verdict.iteration == 4
    assert verdict.reason is not None
    assert verdict.reason.endswith("n4 waits on n2 (it. 5) <- n2 silent since it. 4, "
                                   "not answering")


def test_a_node_that_failed_on_its_own_is_the_root_with_its_reason() -> None:
    states = {"n0": waiting(3, "n1"), "n1": WaitState(2, failure="lost node 'n1': reset")}
    verdict = trace("n0", states)
    assert verdict is not None and verdict.roots == ("n1",)
    assert verdict.reason == "stalled: n0 waits on n1 (it. 3) <- lost node 'n1': reset"


def test_a_stall_the_reporter_does_not_wait_on_is_named_too() -> None:
    states = {"a": waiting(3, "b"), "b": WaitState(2), "c": waiting(7, "d"), "d": WaitState(6),
              "e": WaitState(7, ("d",), overdue=False)}
    verdict = trace("a", states)
    assert verdict is not None and verdict.roots == ("b", "d") and verdict.node == "b"
    assert verdict.reason == ("stalled: a waits on b (it. 3) <- b silent since it. 2; "
                              "c waits on d (it. 7) <- d silent since it. 6")


def test_a_snapshot_of_nodes_that_all_wait_has_no_verdict() -> None:
    assert trace("a", {"a": waiting(3, "b"), "b": waiting(3, "a")}) is None


def test_a_wait_state_survives_its_message_body_and_a_malformed_one_is_no_answer() -> None:
    state = WaitState(5, ("a", "b"), overdue=True)
    assert WaitState.from_body(state.to_body()) == state
    assert WaitState.from_body("busy") is None
    assert WaitState.from_body({"iteration": "5", "waiting_on": [1]}) == WaitState(None)
