"""Trained ensembles to and from `.eqx` files (header: kind, hyperparameters, hash, selection).

One writer and one reader for every trained kind: reaching controllers
(`TrainedEnsemble`), flip-flop and MultiTask sources (`TrainedFlipFlop`,
`TrainedMultiTask`) and data-trained
models (`TrainedDataModel`); histories are stored elsewhere (tables).
"""

from __future__ import annotations

from pathlib import Path

from ntdyn.models.serialisation import load_model, save_model
from ntdyn.training.data_trained import TrainedDataModel
from ntdyn.training.flipflop import TrainedFlipFlop
from ntdyn.training.loop import TrainedEnsemble
from ntdyn.training.multitask import TrainedMultiTask
from ntdyn.training.selection import ReplicateSelection

KINDS = {
    TrainedEnsemble: "reaching_controller",
    TrainedFlipFlop: "flipflop_rnn",
    TrainedMultiTask: "multitask_rnn",
    TrainedDataModel: "data_model",
}
CLASSES = {kind: cls for cls, kind in KINDS.items()}


def save_trained(path: str | Path, trained) -> None:
    """Write a trained ensemble of any kind in KINDS."""
    sel = trained.selection
    save_model(
        path,
        trained.model,
        {
            "kind": KINDS[type(trained)],
            "hash": trained.hash,
            "hyperparams": trained.hyperparams,
            "n_replicates": len(sel.validation_loss),
            "selection": sel.as_dict(),
        },
    )


def load_trained(path: str | Path):
    """Read an ensemble written by `save_trained`; `history` is None (checkpoints not loaded)."""
    model, header = load_model(path)
    sel = header["selection"]
    return CLASSES[header["kind"]](
        hyperparams=header["hyperparams"],
        hash=header["hash"],
        model=model,
        history=None,
        selection=ReplicateSelection(
            validation_loss=tuple(sel["validation_loss"]),
            best=sel["best_replicate"],
            excluded=tuple(sel["excluded_replicates"]),
            n_std_exclude=sel["n_std_exclude"],
            diverged=tuple(sel.get("diverged_replicates", ())),
        ),
    )
