"""A data model's options: the flat hyperparameters, their checks, and what the losses read."""

from __future__ import annotations

from typing import NamedTuple

from ntdyn.models.data_trained import DATA_MODEL_KINDS, SAE_GENERATORS
from ntdyn.training.data_trained.data import ACQUISITION_MODES

CONNECTOME_MODES = ("none", "unconnected_to_zero")


class SAEOptions(NamedTuple):
    n_held_in: int
    coordinated_dropout: float
    kl_weight: float
    kl_ramp_epochs: int


class EvolutionOptions(NamedTuple):
    n_held_in: int
    time_units: int
    evolve_multiple_steps: int
    intermediate_loss_steps: bool
    warmup_epochs: int
    aligned_starts: bool  # time_aligned: starts only at observed bins
    connectome: bool
    num_neurons: int
    loss_coeff: float


def _options(hp: dict, n_held_in: int):
    kind = hp["model__kind"]
    if kind == "latent_evolution":
        return EvolutionOptions(
            n_held_in,
            int(hp["train__time_units"]),
            int(hp["train__evolve_multiple_steps"]),
            bool(hp["train__intermediate_loss_steps"]),
            int(hp["train__warmup_epochs"]),
            hp["train__acquisition"] == "time_aligned",
            hp["train__connectome__mode"] == "unconnected_to_zero",
            int(hp["train__connectome__num_neurons"]),
            float(hp["train__connectome__loss_coeff"]),
        )
    return SAEOptions(
        n_held_in,
        float(hp.get("train__coordinated_dropout", 0.0)),
        float(hp.get("train__kl_weight", 0.0)),
        int(hp.get("train__kl_ramp_epochs", 0)),
    )


def data_model_hyperparams(
    spec: dict, *, n_held_in: int, n_held_out: int, n_inputs: int, dataset_hash: str
) -> dict:
    """A data model's flat hyperparameters plus what it is fitted to (`data__*`)."""
    return dict(spec) | {
        "data__dataset_hash": dataset_hash, "data__n_held_in": int(n_held_in),
        "data__n_held_out": int(n_held_out), "data__n_inputs": int(n_inputs),
    }  # fmt: skip


def check_data_model_hyperparams(hp: dict) -> None:
    """Clear errors for bad options, before any compute."""
    kind = hp.get("model__kind")
    if kind not in DATA_MODEL_KINDS:
        raise ValueError(f"model__kind = {kind!r}: must be one of {list(DATA_MODEL_KINDS)}")
    positive = [
        "train__n_epochs",
        "train__batch_size",
        "train__learning_rate",
        "train__n_replicates",
        "model__latent_size",
    ]
    if kind in SAE_GENERATORS:
        positive += ["model__encoder_size", "model__factor_size"]
    if SAE_GENERATORS.get(kind) == "node":
        positive += ["model__width", "model__depth", "model__dt"]
    if kind == "latent_evolution":
        positive += ["train__time_units", "train__evolve_multiple_steps"]
        if hp["train__acquisition"] not in ACQUISITION_MODES:
            raise ValueError(
                f"train__acquisition = {hp['train__acquisition']!r}: must be one of "
                f"{list(ACQUISITION_MODES)}"
            )
        if hp["train__connectome__mode"] not in CONNECTOME_MODES:
            raise ValueError(
                f"train__connectome__mode = {hp['train__connectome__mode']!r}: must "
                f"be one of {list(CONNECTOME_MODES)}"
            )
    missing = [name for name in positive if name not in hp]
    if missing:
        raise ValueError(f"model__kind = {kind!r} needs {missing}")
    for name in positive:
        if not float(hp[name]) > 0:
            raise ValueError(f"{name} = {hp[name]}: must be > 0")
    p = float(hp.get("train__coordinated_dropout", 0.0))
    if not 0 <= p < 1:
        raise ValueError(f"train__coordinated_dropout = {p}: must be in [0, 1)")
