"""Optax training loops: replicates and spread members vmapped in one compiled program."""

from ntdyn.training.checkpoint import CheckpointConfig
from ntdyn.training.core import TRACE_COUNTS, history_table
from ntdyn.training.divergence import DivergenceConfig, DivergenceError
from ntdyn.training.loop import (
    TrainedEnsemble,
    batch_loss,
    model_data,
    static_signature,
    train_group,
    train_sweep,
)
from ntdyn.training.selection import ReplicateSelection, select_replicate

__all__ = [
    "TRACE_COUNTS",
    "CheckpointConfig",
    "DivergenceConfig",
    "DivergenceError",
    "ReplicateSelection",
    "TrainedEnsemble",
    "batch_loss",
    "history_table",
    "model_data",
    "select_replicate",
    "static_signature",
    "train_group",
    "train_sweep",
]
