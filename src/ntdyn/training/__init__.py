"""Optax training loops: replicates and spread members vmapped in one compiled program."""

from ntdyn.training.loop import (
    TRACE_COUNTS,
    TrainedEnsemble,
    batch_loss,
    history_table,
    model_data,
    static_signature,
    train_group,
    train_sweep,
)
from ntdyn.training.selection import ReplicateSelection, select_replicate

__all__ = [
    "TRACE_COUNTS",
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
