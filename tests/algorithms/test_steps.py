from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch

from peerflow.algorithms import (
    Algorithm,
    GTAdamExecutor,
    LearningExecutor,
    SubgradientPushExecutor,
    adam_scaling,
    dgd,
    extra,
    gt,
    gtadam,
    gtadam_reference,
    nids,
    push_diging,
    push_mix,
    push_share,
    subgradient_push,
    subgradient_push_reference,
    tree_map,
    two_moons,
    weighted_sum,
)
from peerflow.algorithms._steps import ADAM_CLIP, leaves, rebuild

X0 = {"w": torch.tensor([[1.0, -2.0]], dtype=torch.float64),
      "b": torch.tensor([0.5], dtype=torch.float64)}
MIXED = tree_map(lambda t: 0.5 * t + 0.25, X0)


def grad(x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Gradient of sum((x - 1)^2) / 2: x - 1."""
    return tree_map(lambda t: t - 1.0, x)


def step(algorithm: Algorithm, state: Any, mixed: Any) -> Any:
    """One local step: the gradient where ``query`` wants it, then ``update``."""
    at, pending = algorithm.query(state, mixed)
    return algorithm.update(pending, grad(at))


def close(a: Any, b: Any) -> bool:
    return all(torch.allclose(p, q, rtol=0, atol=1e-15) for p, q in
               zip(leaves(a), leaves(b), strict=True))


def test_tree_map_keeps_the_shape_of_nested_dicts() -> None:
    tree = {"x": X0, "v": torch.tensor(2.0)}
    doubled = tree_map(lambda t: 2 * t, tree)
    assert list(doubled) == ["x", "v"] and list(doubled["x"]) == ["w", "b"]
    assert close(doubled["x"], tree_map(lambda t: t + t, X0))
    rebuilt = rebuild(tree, iter(leaves(doubled)))
    assert list(rebuilt["x"]) == ["w", "b"] and close(rebuilt, doubled)


@pytest.mark.parametrize("leaf", [lambda v: torch.tensor(v, dtype=torch.float64), float],
                         ids=["tensor", "float"])
def test_weighted_sum_adds_own_and_neighbour_values_with_their_weights(leaf: Any) -> None:
    own, a, b = ({"x": leaf(v)} for v in (1.0, 10.0, 100.0))
    mixed = weighted_sum(own, 0.5, [(a, 0.3), (b, 0.2)])
    assert float(mixed["x"]) == pytest.approx(0.5 + 3.0 + 20.0, abs=1e-12)
    assert float(own["x"]) == 1.0


def test_push_shares_preserve_the_total_over_a_directed_triangle() -> None:
    values = {"a": 3.0, "b": 5.0, "c": 7.0}
    out = {"a": ["b", "c"], "b": ["c"], "c": ["a"]}
    shares = {node: push_share({"x": v}, len(out[node])) for node, v in values.items()}
    senders = {node: [s for s in out if node in out[s]] for node in values}
    mixed = {node: push_mix(shares[node], shares, senders[node]) for node in values}
    assert sum(m["x"] for m in mixed.values()) == pytest.approx(15.0, abs=1e-12)
    assert mixed["c"]["x"] == pytest.approx(7 / 2 + 3 / 3 + 5 / 2)


def test_dgd_combines_then_adapts_at_the_mixed_point() -> None:
    algorithm = dgd(0.1)
    state = step(algorithm, algorithm.init(X0), {"x": MIXED})
    assert close(state.x, tree_map(lambda m: m - 0.1 * (m - 1.0), MIXED))
    assert algorithm.send(algorithm.init(X0)) == {"x": X0} and not algorithm.push


def test_gt_starts_from_a_zero_tracker_and_tracks_the_new_gradient() -> None:
    algorithm = gt(0.1)
    state = algorithm.init(X0)
    assert close(state.y, tree_map(torch.zeros_like, X0)) and close(state.g, state.y)
    zero = tree_map(torch.zeros_like, X0)
    first = step(algorithm, state, {"x": MIXED, "y": zero})
    assert close(first.x, MIXED)  # x <- W x - a * y(0) with y(0) = 0
    assert close(first.y, grad(MIXED)) and close(first.g, grad(MIXED))
    wy = tree_map(lambda t: 0.5 * t, first.y)
    second = step(algorithm, first, {"x": X0, "y": wy})
    assert close(second.x, tree_map(lambda x, y: x - 0.1 * y, X0, first.y))  # y before mixing
    assert close(second.y, tree_map(lambda a, b, c: a + b - c, wy, grad(second.x), first.g))


def test_gtadam_scales_the_tracker_before_mixing_without_bias_correction() -> None:
    algorithm = gtadam(0.1, beta1=0.9, beta2=0.99, epsilon=1e-8)
    state = algorithm.init(X0)._replace(y=grad(MIXED))
    new = step(algorithm, state, {"x": X0, "y": state.y})
    m = tree_map(lambda y: 0.1 * y, state.y)
    v = tree_map(lambda y: 0.01 * y**2, state.y)
    expected = tree_map(lambda x, m, v: x - 0.1 * m / torch.sqrt(v + 1e-8), X0, m, v)
    assert close(new.x, expected) and close(new.scaling.m, m) and close(new.scaling.v, v)


def test_adam_scaling_bounds_the_second_moment() -> None:
    scaling = adam_scaling(0.0, 0.0, 0.0)
    y = {"y": torch.tensor([1e9], dtype=torch.float64)}
    direction, state = scaling.update(y, scaling.init(tree_map(torch.zeros_like, y)))
    assert float(state.v["y"]) == ADAM_CLIP and float(direction["y"]) == pytest.approx(1e9 / 1e3)


def test_extra_takes_a_dgd_like_first_step_then_corrects_with_the_previous_one() -> None:
    algorithm = extra(0.1)
    first = step(algorithm, algorithm.init(X0), {"x": MIXED})
    assert close(first.x, tree_map(lambda m, g: m - 0.1 * g, MIXED, grad(X0)))
    w1 = tree_map(lambda t: 0.9 * t, first.x)
    second = step(algorithm, first, {"x": w1})
    expected = tree_map(lambda x, wx, xp, wxp, g, gp: x + wx - (xp + wxp) / 2 - 0.1 * (g - gp),
                        first.x, w1, X0, MIXED, grad(first.x), grad(X0))
    assert close(second.x, expected)


def test_push_algorithms_divide_by_the_pushed_weight() -> None:
    for algorithm in (subgradient_push(0.1), push_diging(0.1)):
        assert algorithm.push
        state = algorithm.init(X0)
        mixed = {**algorithm.send(state), "v": torch.tensor(0.5, dtype=torch.float64)}
        new = step(algorithm, state, mixed)
        assert close(new.x, tree_map(lambda u: u / 0.5, mixed["u"]))


def test_subgradient_push_shrinks_its_step_with_the_given_power() -> None:
    algorithm = subgradient_push(1.0, power=1.0)
    state = algorithm.init(X0)._replace(t=3)
    one = torch.tensor(1.0, dtype=torch.float64)
    new = step(algorithm, state, {"u": X0, "v": one})
    assert close(new.u, tree_map(lambda x: x - 0.25 * (x - 1.0), X0)) and new.t == 4


def test_nids_mixes_first_then_sends_a_corrected_gradient_step() -> None:
    algorithm = nids(0.1)
    state = algorithm.init(X0)
    assert close(algorithm.send(state), {"x": X0})  # no gradient yet
    x1 = tree_map(lambda a, b: 0.5 * (a + b), X0, MIXED)
    state = step(algorithm, state, {"x": MIXED})
    assert close(state.x, x1) and close(state.g, grad(x1))
    z1 = tree_map(lambda x, g: x - 0.1 * g, x1, grad(x1))
    assert close(algorithm.send(state)["x"], z1)
    state = step(algorithm, state, {"x": MIXED})
    x2 = tree_map(lambda a, b: 0.5 * (a + b), z1, MIXED)
    z2 = tree_map(lambda x, p, g, q: 2 * x - p - 0.1 * (g - q), x2, x1, grad(x2), grad(x1))
    assert close(algorithm.send(state)["x"], z2)


@pytest.mark.parametrize("algorithm", [dgd(0.1), gt(0.1), gtadam(0.1), extra(0.1), nids(0.1),
                                       subgradient_push(0.1), push_diging(0.1)],
                         ids=["dgd", "gt", "gtadam", "extra", "nids", "subgradient-push",
                              "push-diging"])
def test_step_functions_never_change_their_inputs(algorithm: Algorithm) -> None:
    before = tree_map(torch.clone, X0)
    state = algorithm.init(X0)
    for _ in range(3):
        sent = algorithm.send(state)
        snapshot = tree_map(torch.clone, sent)
        state = step(algorithm, state, tree_map(lambda t: 0.9 * t, sent))
        assert close(sent, snapshot)
    assert close(X0, before)


@pytest.mark.parametrize(("factory", "reference", "executor"), [
    (gtadam, gtadam_reference, GTAdamExecutor),
    (subgradient_push, subgradient_push_reference, SubgradientPushExecutor),
], ids=["gtadam", "subgradient-push"])
def test_step_factory_matrix_form_and_executor_take_their_defaults_from_the_tunables(
        factory: Any, reference: Any, executor: type[LearningExecutor]) -> None:
    defaults = executor.tunables.defaults()
    for function in (factory, reference):
        parameters = inspect.signature(function).parameters
        assert {key: parameters[key].default for key in defaults} == defaults


def test_an_executor_refuses_extra_keys_its_algorithm_does_not_read_naming_those_it_does(
) -> None:
    node = GTAdamExecutor(**two_moons(2, seed=0).node_kwargs(0))
    assert node.tuned({"iterations": 1, "stepsize": 0.1, "beta1": 0.5}) == {
        "beta1": 0.5, "beta2": 0.999, "epsilon": 1e-8}
    with pytest.raises(ValueError, match=r"unknown keys \['beta'\]; GTAdamExecutor reads "
                                         r"\['iterations', 'stepsize', 'beta1', 'beta2'"):
        node.build_algorithm({"iterations": 1, "stepsize": 0.1, "beta": 0.5})
    with pytest.raises(ValueError, match=r"extra: Expected `float` >= 0.0 - at `\$.beta2`"):
        node.build_algorithm({"iterations": 1, "stepsize": 0.1, "beta2": -1})
