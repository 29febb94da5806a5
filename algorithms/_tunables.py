"""Each learning algorithm's (and fedavg's) tunables: its ``extra`` keys with their
types and defaults.

One frozen struct per algorithm, defined once here and read by the step factories
(``_steps``), their executors (``_learning``), the matrix forms (``_reference``),
fedavg's job and the job registry; msgspec checks a run's values against it (types, >= 0,
finite, no unknown key). No torch here, so the matrix forms and job files stay
torch-free.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Annotated, Any, Self

import msgspec

from peerflow.actors import DEFAULT_MAX_WAIT

from ._compress_spec import parse_compress_spec

__all__ = ["ADAM_CLIP", "AsyncTunables", "ChocoGossipTunables", "CompressTunables",
           "FedAvgTunables", "GTAdamTunables", "NonNegative", "SubgradientPushTunables",
           "Tunables"]

NonNegative = Annotated[float, msgspec.Meta(ge=0, le=sys.float_info.max)]
"""A finite number >= 0."""
AtLeastOne = Annotated[int, msgspec.Meta(ge=1)]
"""A count of one or more."""

ADAM_CLIP = 1e6
"""GTAdam's bound G on the second moment (NVFlare's ``self.G``)."""


class Tunables(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An algorithm's parameters besides iterations and step size: none for this base.

    Subclasses (frozen, no unknown field: inherited) add one field per key.
    """

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every key with its default."""
        return msgspec.structs.asdict(cls())

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> Self:
        """The tunables a run's ``extra`` gives (absent ones take their defaults); the
        other keys of ``extra`` (iterations, stepsize) are not this struct's to check.

        Raises:
            msgspec.ValidationError: a value of the wrong type or out of range.
        """
        return msgspec.convert({key: extra[key] for key in cls.__struct_fields__
                                if key in extra}, cls)


class GTAdamTunables(Tunables, kw_only=True):
    """GTAdam's Adam scaling of the tracker: moment decays and the stabilizer."""

    beta1: NonNegative = 0.9
    beta2: NonNegative = 0.999
    epsilon: NonNegative = 1e-8


class SubgradientPushTunables(Tunables, kw_only=True):
    """Subgradient-push's step decay a(t) = a / (t+1)^power (0: a constant step)."""

    power: NonNegative = 0.0


class CompressTunables(Tunables, kw_only=True):
    """Compressed gossip's (CHOCO's, DGD's) consensus step size gamma and compressor: a
    spec ``none``, ``top-k:FRACTION``, ``random-k:FRACTION`` or ``qsgd:LEVELS``. gamma = 1
    without compression is exact gossip; a compressor that keeps little needs a small
    gamma."""

    gamma: NonNegative = 1.0
    compress: str = "none"

    def __post_init__(self) -> None:
        parse_compress_spec(self.compress)


class ChocoGossipTunables(CompressTunables, kw_only=True):
    """CHOCO-gossip's job: ``CompressTunables`` and the length of the vectors averaged."""

    dimension: AtLeastOne = 100


class FedAvgTunables(Tunables, kw_only=True):
    """Federated averaging's rounds (NVFlare's ScatterAndGather defaults for the first
    two) and its in-process sites' local training."""

    min_clients: AtLeastOne = 1
    wait_time_after_min_received: NonNegative = 10.0
    train_timeout: NonNegative = 0.0
    """Seconds a site may take per round (0: no bound)."""
    local_epochs: AtLeastOne = 5


class AsyncTunables(Tunables, kw_only=True):
    """How an asynchronous algorithm runs: at each node's own pace, waiting up to
    ``max_wait`` seconds for news before each tick, or (``scheduled`` > 0) on a seeded
    schedule of nodes x iterations global ticks whose messages arrive 1 to
    1 + ``max_delay`` ticks late (whole ticks) or are lost with probability ``drop``
    (below 1)."""

    max_wait: NonNegative = DEFAULT_MAX_WAIT
    scheduled: NonNegative = 0.0
    max_delay: NonNegative = 0.0
    drop: NonNegative = 0.0
