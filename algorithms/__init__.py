"""peerflow.algorithms: consensus and learning algorithms, federated averaging, topologies
and mixing weights."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._consensus import ConsensusExecutor
from ._fedavg import (
    TRAIN_TASK,
    ResultError,
    RoundRecord,
    ScatterAndGather,
    aggregate,
    as_weights,
    sites_config,
)
from ._fedavg_sites import AgentTrainer, Trainer, TrainerExecutor, TrainerFailed, TrainOutput
from ._loop import (
    NO_OBJECTIVE,
    Algorithm,
    NoObjective,
    Objective,
    StepExecutor,
    consensus,
    push_sum,
)
from ._losses import LossRecord, loss_columns, loss_records
from ._mixers import Mixing, push_mixing, row_mixing
from ._mixing import (
    ARPACK_MAXITER,
    TopologyReport,
    consensus_rate,
    describe,
    is_column_stochastic,
    is_doubly_stochastic,
    is_row_stochastic,
    mixing_matrix,
    second_largest_eigenvalue_modulus,
    sparse_mixing_matrix,
    spectral_gap,
    stochasticity_warnings,
)
from ._reference import (
    column_stochastic,
    consensus_reference,
    dgd_reference,
    extra_reference,
    gt_reference,
    gtadam_reference,
    push_diging_reference,
    push_sum_reference,
    subgradient_push_reference,
)
from ._topology import (
    TOPOLOGIES,
    complete,
    directed_ring,
    graph_of,
    grid,
    grid_shape,
    metropolis_hastings,
    network_from_graph,
    path,
    random_connected,
    random_directed,
    ring,
    star,
)
from ._tunables import (
    FedAvgTunables,
    GTAdamTunables,
    NonNegative,
    SubgradientPushTunables,
    Tunables,
)

# The names below need torch (about 2 s to import): they load on first use (PEP 562),
# so that consensus, topologies and every process that runs neither import torch.
_LAZY = {
    "_agent_learning": ("AGENT_LEARNING_EXECUTORS", "AgentLearning"),
    "_fedavg_trainer": ("ProblemTrainer", "global_metrics", "problem_weights"),
    "_learning": ("LEARNING_EXECUTORS", "DGDExecutor", "ExtraExecutor", "GTADAMExecutor",
                  "GTAdamExecutor", "GTExecutor", "LearningExecutor", "PushDIGingExecutor",
                  "SubgradientPushExecutor", "dataset_loss"),
    "_problems": ("PROBLEMS", "Problem", "accuracy", "blobs", "flatten", "least_squares",
                  "two_moons"),
    "_pushsum": ("PushSumExecutor", "push_mix", "push_share"),
    "_steps": ("Scaling", "adam_scaling", "dgd", "extra", "gt", "gtadam",
               "push_diging", "subgradient_push", "tree_map", "weighted_sum"),
}
_LAZY_MODULES = {name: module for module, names in _LAZY.items() for name in names}

if TYPE_CHECKING:
    from ._agent_learning import AGENT_LEARNING_EXECUTORS, AgentLearning
    from ._fedavg_trainer import ProblemTrainer, global_metrics, problem_weights
    from ._learning import (
        LEARNING_EXECUTORS,
        DGDExecutor,
        ExtraExecutor,
        GTADAMExecutor,
        GTAdamExecutor,
        GTExecutor,
        LearningExecutor,
        PushDIGingExecutor,
        SubgradientPushExecutor,
        dataset_loss,
    )
    from ._problems import PROBLEMS, Problem, accuracy, blobs, flatten, least_squares, two_moons
    from ._pushsum import PushSumExecutor, push_mix, push_share
    from ._steps import (
        Scaling,
        adam_scaling,
        dgd,
        extra,
        gt,
        gtadam,
        push_diging,
        subgradient_push,
        tree_map,
        weighted_sum,
    )


def __getattr__(name: str) -> Any:
    """Import a torch-using name's module on first use, and keep the name here.

    Raises:
        AttributeError: no such name.
    """
    module = _LAZY_MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_MODULES})


__all__ = [
    "AGENT_LEARNING_EXECUTORS",
    "ARPACK_MAXITER",
    "AgentLearning",
    "AgentTrainer",
    "Algorithm",
    "ConsensusExecutor",
    "DGDExecutor",
    "ExtraExecutor",
    "GTADAMExecutor",
    "GTAdamExecutor",
    "FedAvgTunables",
    "GTAdamTunables",
    "GTExecutor",
    "LEARNING_EXECUTORS",
    "LearningExecutor",
    "LossRecord",
    "Mixing",
    "NO_OBJECTIVE",
    "NonNegative",
    "NoObjective",
    "Objective",
    "PROBLEMS",
    "Problem",
    "ProblemTrainer",
    "PushDIGingExecutor",
    "PushSumExecutor",
    "ResultError",
    "RoundRecord",
    "Scaling",
    "ScatterAndGather",
    "StepExecutor",
    "SubgradientPushExecutor",
    "SubgradientPushTunables",
    "TOPOLOGIES",
    "TRAIN_TASK",
    "TopologyReport",
    "TrainOutput",
    "Trainer",
    "TrainerExecutor",
    "TrainerFailed",
    "Tunables",
    "accuracy",
    "adam_scaling",
    "aggregate",
    "as_weights",
    "blobs",
    "column_stochastic",
    "complete",
    "consensus",
    "consensus_rate",
    "consensus_reference",
    "dataset_loss",
    "describe",
    "dgd",
    "dgd_reference",
    "directed_ring",
    "extra",
    "extra_reference",
    "flatten",
    "global_metrics",
    "graph_of",
    "grid",
    "grid_shape",
    "gt",
    "gt_reference",
    "gtadam",
    "gtadam_reference",
    "is_column_stochastic",
    "is_doubly_stochastic",
    "is_row_stochastic",
    "least_squares",
    "loss_columns",
    "loss_records",
    "metropolis_hastings",
    "mixing_matrix",
    "network_from_graph",
    "path",
    "problem_weights",
    "push_diging",
    "push_diging_reference",
    "push_mix",
    "push_mixing",
    "push_share",
    "push_sum",
    "push_sum_reference",
    "random_connected",
    "random_directed",
    "ring",
    "row_mixing",
    "second_largest_eigenvalue_modulus",
    "sites_config",
    "sparse_mixing_matrix",
    "spectral_gap",
    "star",
    "stochasticity_warnings",
    "subgradient_push",
    "subgradient_push_reference",
    "tree_map",
    "two_moons",
    "weighted_sum",
]
