"""Fitting data-trained models to spikes: replicates vmapped, one compiled program per epoch.

The data set (B trials, T bins, N = N_in + N_out neurons, I task inputs) is
split into training and validation trials. Encoders read only the held-in
neurons; the Poisson likelihood covers every neuron of the training trials, so
held-out neurons get a readout that is judged on validation trials (co-bps).

Training is epoch-based: each epoch walks minibatches of a per-replicate
permutation of the training trials, one compiled step for all replicates (one
`vmap`). The epochs run as the training core's chunks (`ntdyn.training.core.run_chunks`:
progress, divergence checks, resumable checkpoints of the whole training state); after an
epoch the replicates are snapshotted every `checkpoint_every` epochs and validated
(Poisson NLL, roll-out error vs horizon, roll-out stability) every `validate_every` epochs.

What is where:

- `data`: the trials (`SpikeTrainingData`), which bins are observed (`acquisition_mask`),
  what the encoder reads (`held_observations`), the pairs the connectome constrains.
- `options`: the flat hyperparameters (`data_model_hyperparams`), their checks
  (`check_data_model_hyperparams`), and the options the losses read (`SAEOptions`,
  `EvolutionOptions`).
- `losses`: `poisson_nll`, `sae_loss`, `evolution_loss`, `connectome_penalty`, `LOSSES`.
- `inference`: rates and latents of a model on trials in chunks (`infer`, `infer_plan`).
- `validation`: `nll_per_bin`, `rollout_error`, `rollout_stability`, `validation_metrics`.
- `trainer`: `train_data_model` and its result (`TrainedDataModel`), the train step, the
  epochs' snapshots and validations (`EpochPlan`), the training state, the history table.
- `trace_counts`: `TRACE_COUNTS`, how often each compiled program was traced.
"""

from ntdyn.training.data_trained.data import (
    ACQUISITION_MODES,
    SpikeTrainingData,
    _mask,
    acquisition_mask,
    held_observations,
    unconnected_pairs,
)
from ntdyn.training.data_trained.inference import DataModelInference, infer, infer_plan
from ntdyn.training.data_trained.losses import (
    LOSSES,
    connectome_penalty,
    evolution_loss,
    poisson_nll,
    sae_loss,
)
from ntdyn.training.data_trained.options import (
    CONNECTOME_MODES,
    EvolutionOptions,
    SAEOptions,
    check_data_model_hyperparams,
    data_model_hyperparams,
)
from ntdyn.training.data_trained.trace_counts import TRACE_COUNTS
from ntdyn.training.data_trained.trainer import (
    TRAIN_TERMS,
    DataTrainState,
    EpochPlan,
    TrainedDataModel,
    epoch_batches,
    train_data_model,
    train_step,
)
from ntdyn.training.data_trained.validation import (
    ROLLOUT_STARTS,
    nll_per_bin,
    rollout_error,
    rollout_stability,
    validation_metrics,
    validation_terms,
)

__all__ = [
    "ACQUISITION_MODES",
    "CONNECTOME_MODES",
    "LOSSES",
    "ROLLOUT_STARTS",
    "TRACE_COUNTS",
    "TRAIN_TERMS",
    "DataModelInference",
    "DataTrainState",
    "EpochPlan",
    "EvolutionOptions",
    "SAEOptions",
    "SpikeTrainingData",
    "TrainedDataModel",
    "_mask",
    "acquisition_mask",
    "check_data_model_hyperparams",
    "connectome_penalty",
    "data_model_hyperparams",
    "epoch_batches",
    "evolution_loss",
    "held_observations",
    "infer",
    "infer_plan",
    "nll_per_bin",
    "poisson_nll",
    "rollout_error",
    "rollout_stability",
    "sae_loss",
    "train_data_model",
    "train_step",
    "unconnected_pairs",
    "validation_metrics",
    "validation_terms",
]
