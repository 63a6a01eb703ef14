"""The hyperparameters of each model kind: every `__`-flat name a record of that kind may
have, and what it may hold. The one declaration of them: the pandera schemas of the sweep
tables (`ntdyn.hyperparams.schemas`, strict) and the run's parameter check
(`ntdyn.parameters`) are both built from it. Optional names (a sweep need not set every
one) are listed too: a name absent here is refused.
"""

from __future__ import annotations

from types import MappingProxyType

from ntdyn.hyperparams import rules as r
from ntdyn.hyperparams.rules import Rule

# Divergence check of the training core: a loss above `divergence_factor` x the first
# loss stops training (optional; the training core's default when absent).
_DIVERGENCE = {"train__divergence_factor": r.positive()}

# Training by batches (reaching controllers and flip-flop sources).
_STEPS = {
    "train__n_batches": r.count(),
    "train__batch_size": r.count(),
    "train__learning_rate": r.positive(),
    "train__n_replicates": r.count(),
    "train__seed": r.index(),
    "train__n_std_exclude": r.positive(),
    **_DIVERGENCE,
}

# A reaching controller (docs/science.md §1–2; conf/base/globals.yml `reaching`).
REACHING: dict[str, Rule] = {
    "model__cell": r.text("gru", "rnn"),
    "model__hidden_size": r.count(),
    "model__sisu_input": r.flag(),
    "task__mass": r.positive(),
    "task__damping": r.non_negative(),
    "task__dt": r.positive(),
    "task__n_steps": r.count(),
    "task__workspace": r.positive(),
    "task__feedback__delay": r.index(),
    "task__feedback__noise_std": r.non_negative(),
    "task__motor__noise_std": r.non_negative(),
    "task__motor__mult_noise_std": r.non_negative(),
    "cost__position": r.non_negative(),
    "cost__position_exponent": r.non_negative(),
    "cost__final_velocity": r.non_negative(),
    "cost__control": r.non_negative(),
    "cost__hidden": r.non_negative(),
    "train__method": r.text("fixed", "bcs", "dai", "pai-asf"),
    "train__pert__type": r.text("curl", "constant"),
    "train__pert__std": r.non_negative(),
    "train__pert__p_active": r.fraction(),
    **_STEPS,
}

# A flip-flop source network (task_vs_data.sources, kind flipflop).
FLIPFLOP: dict[str, Rule] = {
    "model__hidden_size": r.count(),
    "model__hidden_noise_std": r.non_negative(),
    "task__n_bits": r.count(),
    "task__n_steps": r.count(),
    "task__p_pulse": r.fraction(),
    "task__input_noise_std": r.non_negative(),
    # The benchmark's NBFF variant (`ntdyn.tasks.flipflop.FlipFlopVariant`; optional, ntdyn's
    # task when absent): targets in {0, 1}, no pulses in the first steps, a loss blind to the
    # steps after each target change and to the first steps.
    "task__target_coding": r.text("sign", "zero_one"),
    "task__quiet_steps": r.index(),
    "task__transition_blind": r.index(),
    "task__ignore_first_steps": r.index(),
    **_STEPS,
}

# A MultiTask source network (task_vs_data.sources, kind multitask; docs/science.md §1.3).
# The task names are those of `ntdyn.tasks.multitask.TASKS` (MultiTaskConfig checks them
# and the trial length before any compute).
MULTITASK: dict[str, Rule] = {
    "model__hidden_size": r.count(),
    "model__hidden_noise_std": r.non_negative(),
    "task__tasks": r.list_of(r.text()),
    "task__n_timesteps": r.count(),
    "task__bin_size_ms": r.count(),
    "task__noise": r.non_negative(),
    "task__num_targets": r.count(),
    "task__response_weight": r.non_negative(),
    "task__grace_steps": r.index(),
    "task__ignore_first_steps": r.index(),
    # every trial of a training batch of one task (the benchmark's grouped sampler)
    "task__one_task_per_batch": r.flag(),
    **_STEPS,
}

# The data-trained models' kinds (`ntdyn.models.data_trained.DATA_MODEL_KINDS`, a test keeps
# the two equal): the sequential autoencoders by generator, LFADS, latent evolution.
DATA_MODEL_KINDS = ("sae_gru", "sae_rnn", "sae_lds", "sae_node", "lfads", "latent_evolution")

# A data-trained model (task_vs_data.data_models.<name>: its `model` and `train` blocks).
DATA_MODEL: dict[str, Rule] = {
    "model__kind": r.text(*DATA_MODEL_KINDS),
    "model__encoder_size": r.count(),
    "model__latent_size": r.count(),
    "model__factor_size": r.count(),
    "model__controller_size": r.count(),
    "model__n_inferred_inputs": r.index(),
    "model__width": r.count(),  # latent evolution's MLPs, the NODE generator's vector field
    "model__depth": r.count(),
    "model__dt": r.positive(),  # the NODE generator's Euler step (bins)
    "train__n_epochs": r.count(),
    "train__batch_size": r.count(),
    "train__learning_rate": r.positive(),
    "train__n_replicates": r.count(),
    "train__seed": r.index(),
    "train__n_std_exclude": r.positive(),
    "train__coordinated_dropout": r.number(ge=0, le=0.99),
    "train__kl_weight": r.non_negative(),
    "train__kl_ramp_epochs": r.count(),
    "train__checkpoint_every": r.index(),
    "train__validate_every": r.count(),
    "train__rollout_horizons": r.list_of(r.count()),
    "train__rollout_max_steps": r.count(),
    "train__time_units": r.count(),
    "train__evolve_multiple_steps": r.count(),
    "train__intermediate_loss_steps": r.flag(),
    "train__warmup_epochs": r.index(),
    "train__acquisition": r.text("all_time_points", "time_aligned", "staggered_random"),
    "train__encoder_smoothing": r.non_negative(),
    "train__connectome__mode": r.text("none", "unconnected_to_zero"),
    "train__connectome__density": r.fraction(),
    "train__connectome__num_neurons": r.count(),
    "train__connectome__loss_coeff": r.non_negative(),
    # roll-out stability during validation: a ball of this x the largest latent norm
    "train__rollout_divergence_factor": r.positive(),
    **_DIVERGENCE,
}

# The recorded MLP of training_dynamics (its `hyperparams`: data, model, train).
RECORDED_MLP: dict[str, Rule] = {
    "data__name": r.text("digits", "mnist_file"),
    "data__path": r.text(nullable=True),
    "data__test_fraction": r.number(gt=0, le=0.99),
    "data__seed": r.index(),
    "model__hidden_sizes": r.list_of(r.count()),
    "model__activation": r.text("relu", "tanh"),
    "train__n_steps": r.count(),
    "train__batch_size": r.count(),
    "train__learning_rate": r.positive(),
    "train__schedule": r.text("constant", "cosine"),
    "train__seed": r.index(),
    "train__record_every": r.count(),
    "train__test_samples": r.count(),
    "train__probe_size": r.count(),
    "train__density_threshold": r.non_negative(),
    **_DIVERGENCE,
}

# Optional hyperparameters added after records existed, at the value that does what ntdyn did
# before them: `without_defaults` drops them at that value, so a conf that spells the default
# out trains, hashes and reuses the same record as one that leaves it out. (A test keeps these
# equal to the defaults of the code that reads them.)
DEFAULTS = MappingProxyType({
    "flipflop": MappingProxyType({
        "task__target_coding": "sign", "task__quiet_steps": 0, "task__transition_blind": 0,
        "task__ignore_first_steps": 0,
    }),
    "multitask": MappingProxyType({"task__one_task_per_batch": False}),
})  # fmt: skip


def without_defaults(hp: dict, kind: str) -> dict:
    """Flat hyperparameters `hp` of `kind` less the optional ones at their `DEFAULTS` value."""
    defaults = DEFAULTS.get(kind, {})
    return {k: v for k, v in hp.items()
            if not (k in defaults and _same(v, defaults[k]))}  # fmt: skip


def _same(value, default) -> bool:
    if isinstance(value, bool) or isinstance(default, bool):
        return value is default
    return value == default


HYPERPARAMETERS = MappingProxyType({
    "reaching": MappingProxyType(REACHING),
    "flipflop": MappingProxyType(FLIPFLOP),
    "multitask": MappingProxyType(MULTITASK),
    "data_model": MappingProxyType(DATA_MODEL),
    "recorded_mlp": MappingProxyType(RECORDED_MLP),
})  # fmt: skip
