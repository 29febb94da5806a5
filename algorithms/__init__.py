"""peerflow.algorithms: consensus and learning algorithms, federated averaging, topologies
and mixing weights."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._async import (
    PushSumState,
    gradient_push_step,
    in_flight,
    push_sum_absorb,
    push_sum_estimate,
    push_sum_init,
    push_sum_share,
)
from ._async_averaging import AsyncPushSumExecutor, GossipExecutor
from ._compress_spec import COMPRESSOR_FORMS, CompressSpec, parse_compress_spec
from ._consensus import ConsensusExecutor
from ._engines import ENGINES, check_engine, fallback_line
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
from ._gossip import (
    GossipState,
    gossip_absorb,
    gossip_answer,
    gossip_gradient_step,
    gossip_in_flight,
    gossip_init,
    gossip_messages,
    gossip_offer,
)
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
    nids_reference,
    push_diging_reference,
    push_sum_reference,
    subgradient_push_reference,
)
from ._schedules import (
    PRODUCT_NODES,
    SCHEDULES,
    MixingSchedule,
    ScheduleReport,
    cycle_of_graphs,
    describe_schedule,
    exponential_one_peer,
    random_matching,
)
from ._topology import (
    TOPOLOGIES,
    complete,
    directed_ring,
    exponential,
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
    AsyncTunables,
    ChocoGossipTunables,
    CompressTunables,
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
    "_async_learning": ("ASYNC_LEARNING_EXECUTORS", "ADPSGDExecutor", "AsyncLearningExecutor",
                        "GradientPushExecutor"),
    "_choco": ("ChocoGossipExecutor", "ChocoState", "choco_gossip", "choco_sgd"),
    "_squeeze": ("SqueezeState", "error_feedback_dgd"),
    "_compress": ("Compressor", "compress_tree", "decompress", "decompress_tree",
                  "error_feedback", "node_generator", "parse_compressor"),
    "_batched_engine": ("batched_obstacle", "simulate_batched"),
    "_fedavg_trainer": ("ProblemTrainer", "global_metrics", "problem_weights"),
    "_executors": ("LEARNING_EXECUTORS", "ChocoSGDExecutor", "DGDExecutor", "ExtraExecutor",
                   "GTADAMExecutor", "GTAdamExecutor", "GTExecutor", "NIDSExecutor",
                   "PushDIGingExecutor", "SubgradientPushExecutor"),
    "_learning": ("LearningExecutor", "dataset_loss"),
    "_problems": ("PROBLEMS", "Problem", "accuracy", "blobs", "flatten", "least_squares",
                  "two_moons"),
    "_pushsum": ("PushSumExecutor", "push_mix", "push_share"),
    "_steps": ("Scaling", "adam_scaling", "dgd", "extra", "gt", "gtadam", "nids",
               "push_diging", "subgradient_push", "tree_map", "weighted_sum"),
}
_LAZY_MODULES = {name: module for module, names in _LAZY.items() for name in names}

if TYPE_CHECKING:
    from ._agent_learning import AGENT_LEARNING_EXECUTORS, AgentLearning
    from ._async_learning import (
        ASYNC_LEARNING_EXECUTORS,
        ADPSGDExecutor,
        AsyncLearningExecutor,
        GradientPushExecutor,
    )
    from ._batched_engine import batched_obstacle, simulate_batched
    from ._choco import ChocoGossipExecutor, ChocoState, choco_gossip, choco_sgd
    from ._compress import (
        Compressor,
        compress_tree,
        decompress,
        decompress_tree,
        error_feedback,
        node_generator,
        parse_compressor,
    )
    from ._executors import (
        LEARNING_EXECUTORS,
        ChocoSGDExecutor,
        DGDExecutor,
        ExtraExecutor,
        GTADAMExecutor,
        GTAdamExecutor,
        GTExecutor,
        NIDSExecutor,
        PushDIGingExecutor,
        SubgradientPushExecutor,
    )
    from ._fedavg_trainer import ProblemTrainer, global_metrics, problem_weights
    from ._learning import LearningExecutor, dataset_loss
    from ._problems import PROBLEMS, Problem, accuracy, blobs, flatten, least_squares, two_moons
    from ._pushsum import PushSumExecutor, push_mix, push_share
    from ._squeeze import SqueezeState, error_feedback_dgd
    from ._steps import (
        Scaling,
        adam_scaling,
        dgd,
        extra,
        gt,
        gtadam,
        nids,
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
    "ADPSGDExecutor",
    "AGENT_LEARNING_EXECUTORS",
    "ASYNC_LEARNING_EXECUTORS",
    "ARPACK_MAXITER",
    "ENGINES",
    "AgentLearning",
    "AgentTrainer",
    "Algorithm",
    "AsyncLearningExecutor",
    "AsyncPushSumExecutor",
    "AsyncTunables",
    "COMPRESSOR_FORMS",
    "ChocoGossipExecutor",
    "ChocoGossipTunables",
    "ChocoSGDExecutor",
    "ChocoState",
    "CompressTunables",
    "CompressSpec",
    "Compressor",
    "ConsensusExecutor",
    "DGDExecutor",
    "ExtraExecutor",
    "GTADAMExecutor",
    "GTAdamExecutor",
    "FedAvgTunables",
    "GTAdamTunables",
    "GTExecutor",
    "GossipExecutor",
    "GradientPushExecutor",
    "GossipState",
    "LEARNING_EXECUTORS",
    "LearningExecutor",
    "LossRecord",
    "Mixing",
    "MixingSchedule",
    "NIDSExecutor",
    "NO_OBJECTIVE",
    "NonNegative",
    "NoObjective",
    "Objective",
    "PROBLEMS",
    "PRODUCT_NODES",
    "Problem",
    "ProblemTrainer",
    "PushDIGingExecutor",
    "PushSumExecutor",
    "PushSumState",
    "ResultError",
    "RoundRecord",
    "SCHEDULES",
    "Scaling",
    "ScatterAndGather",
    "ScheduleReport",
    "SqueezeState",
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
    "batched_obstacle",
    "blobs",
    "check_engine",
    "column_stochastic",
    "choco_gossip",
    "choco_sgd",
    "complete",
    "compress_tree",
    "consensus",
    "consensus_rate",
    "consensus_reference",
    "cycle_of_graphs",
    "dataset_loss",
    "decompress",
    "decompress_tree",
    "describe",
    "describe_schedule",
    "dgd",
    "dgd_reference",
    "directed_ring",
    "exponential",
    "exponential_one_peer",
    "error_feedback",
    "error_feedback_dgd",
    "extra",
    "extra_reference",
    "fallback_line",
    "flatten",
    "global_metrics",
    "gossip_absorb",
    "gossip_answer",
    "gossip_gradient_step",
    "gossip_in_flight",
    "gossip_init",
    "gossip_messages",
    "gossip_offer",
    "gradient_push_step",
    "graph_of",
    "grid",
    "grid_shape",
    "gt",
    "gt_reference",
    "gtadam",
    "gtadam_reference",
    "in_flight",
    "is_column_stochastic",
    "is_doubly_stochastic",
    "is_row_stochastic",
    "least_squares",
    "loss_columns",
    "loss_records",
    "metropolis_hastings",
    "mixing_matrix",
    "network_from_graph",
    "nids",
    "nids_reference",
    "node_generator",
    "parse_compress_spec",
    "parse_compressor",
    "path",
    "problem_weights",
    "push_diging",
    "push_diging_reference",
    "push_mix",
    "push_mixing",
    "push_share",
    "push_sum",
    "push_sum_absorb",
    "push_sum_estimate",
    "push_sum_init",
    "push_sum_reference",
    "push_sum_share",
    "random_connected",
    "random_directed",
    "random_matching",
    "ring",
    "row_mixing",
    "second_largest_eigenvalue_modulus",
    "simulate_batched",
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
