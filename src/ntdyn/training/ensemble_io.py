"""Trained ensembles to and from `.eqx` files (header: hyperparameters, hash, selection)."""

from __future__ import annotations

from pathlib import Path

from ntdyn.models.serialisation import load_model, save_model
from ntdyn.training.loop import TrainedEnsemble
from ntdyn.training.selection import ReplicateSelection


def save_trained(path: str | Path, trained: TrainedEnsemble) -> None:
    """Write a trained ensemble; its training history is stored elsewhere (a table)."""
    sel = trained.selection
    save_model(
        path,
        trained.model,
        {
            "kind": "reaching_controller",
            "hash": trained.hash,
            "hyperparams": trained.hyperparams,
            "n_replicates": len(sel.validation_loss),
            "selection": sel.as_dict(),
        },
    )


def load_trained(path: str | Path) -> TrainedEnsemble:
    """Read an ensemble written by `save_trained`; `history` is None."""
    model, header = load_model(path)
    sel = header["selection"]
    return TrainedEnsemble(
        hyperparams=header["hyperparams"],
        hash=header["hash"],
        model=model,
        history=None,
        selection=ReplicateSelection(
            validation_loss=tuple(sel["validation_loss"]),
            best=sel["best_replicate"],
            excluded=tuple(sel["excluded_replicates"]),
            n_std_exclude=sel["n_std_exclude"],
        ),
    )
