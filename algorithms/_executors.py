"""The learning executors by name: each builds its algorithm's step functions
(``_steps``, ``_choco``, ``_squeeze``) from ``extra`` and runs them through
``LearningExecutor``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import _choco, _squeeze, _steps
from ._compress import node_generator, parse_compressor
from ._learning import LearningExecutor
from ._loop import Algorithm
from ._tunables import CompressTunables, GTAdamTunables, SubgradientPushTunables


def _stepsize(extra: Mapping[str, Any]) -> float:
    value = extra.get("stepsize")
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"extra['stepsize'] must be a number >= 0, got {value!r}")
    return float(value)


class DGDExecutor(LearningExecutor):
    """Distributed gradient descent (NVFlare's name); ``extra``: iterations, stepsize and
    ``CompressTunables``' gamma and compress: with a compressor (or gamma other than 1),
    DGD whose gossip is compressed with error feedback (``_squeeze``); random compressors
    draw from a generator seeded by the node's name."""

    tunables = CompressTunables

    def build_algorithm(self, extra: dict[str, Any]) -> Algorithm:
        tuned = self.tuned(extra)
        if tuned == CompressTunables.defaults():  # NVFlare's recursion, operation for operation
            return _steps.dgd(_stepsize(extra))
        return _squeeze.error_feedback_dgd(_stepsize(extra), tuned["gamma"],
                                           parse_compressor(tuned["compress"]),
                                           node_generator(self.id))


class GTExecutor(LearningExecutor):
    """Gradient tracking (NVFlare's name); ``extra``: iterations, stepsize."""

    def build_algorithm(self, extra: dict[str, Any]) -> Algorithm:
        return _steps.gt(_stepsize(extra), **self.tuned(extra))


class GTAdamExecutor(LearningExecutor):
    """GTAdam; ``extra``: iterations, stepsize and ``GTAdamTunables``' beta1, beta2, epsilon."""

    tunables = GTAdamTunables

    def build_algorithm(self, extra: dict[str, Any]) -> Algorithm:
        return _steps.gtadam(_stepsize(extra), **self.tuned(extra))


GTADAMExecutor = GTAdamExecutor
"""NVFlare's spelling."""


class ExtraExecutor(LearningExecutor):
    """EXTRA, exact with a constant step on undirected graphs; ``extra``: iterations, stepsize."""

    def build_algorithm(self, extra: dict[str, Any]) -> Algorithm:
        return _steps.extra(_stepsize(extra), **self.tuned(extra))


class NIDSExecutor(LearningExecutor):
    """NIDS, exact with a constant step below 2/L on undirected graphs (a larger range
    than EXTRA's); ``extra``: iterations, stepsize."""

    def build_algorithm(self, extra: dict[str, Any]) -> Algorithm:
        return _steps.nids(_stepsize(extra), **self.tuned(extra))


class SubgradientPushExecutor(LearningExecutor):
    """Subgradient-push for directed graphs; ``extra``: iterations, stepsize and
    ``SubgradientPushTunables``' power."""

    tunables = SubgradientPushTunables

    def build_algorithm(self, extra: dict[str, Any]) -> Algorithm:
        return _steps.subgradient_push(_stepsize(extra), **self.tuned(extra))


class PushDIGingExecutor(LearningExecutor):
    """Push-DIGing, exact on directed graphs; ``extra``: iterations, stepsize."""

    def build_algorithm(self, extra: dict[str, Any]) -> Algorithm:
        return _steps.push_diging(_stepsize(extra), **self.tuned(extra))


class ChocoSGDExecutor(LearningExecutor):
    """CHOCO-SGD, DGD with compressed gossip; ``extra``: iterations, stepsize and
    ``CompressTunables``' gamma and compress. Random compressors draw from a generator
    seeded by the node's name."""

    tunables = CompressTunables

    def build_algorithm(self, extra: dict[str, Any]) -> Algorithm:
        tuned = self.tuned(extra)
        return _choco.choco_sgd(_stepsize(extra), tuned["gamma"],
                                parse_compressor(tuned["compress"]), node_generator(self.id))


LEARNING_EXECUTORS: dict[str, type[LearningExecutor]] = {
    "dgd": DGDExecutor, "gt": GTExecutor, "gtadam": GTAdamExecutor, "extra": ExtraExecutor,
    "nids": NIDSExecutor, "subgradient-push": SubgradientPushExecutor,
    "push-diging": PushDIGingExecutor, "choco-sgd": ChocoSGDExecutor,
}
"""The learning executors by their command-line name."""
