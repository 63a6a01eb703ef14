"""Every parameter the project knows: the one declaration the run's parameters are checked
against (conf files, `--params` and runtime parameters merged).

Hyperparameter blocks come from `ntdyn.hyperparams.kinds`; the other sections list what
their consumers take: `ResourceBudget` (resources), `Keep` (evaluation keep), the
analyses' trial builders in `ntdyn.analysis.experiments` (one evaluation section each),
`FixedPointConfig` (finder, fixed_points), the measures and stored variables of
`ntdyn.analysis` and the nodes of each pipeline. The pipeline
tests check these lists against those references (tests/parameters/test_spec.py), so a
new option is declared here once, or the tests say which.
"""

from __future__ import annotations

from types import MappingProxyType

from ntdyn.analysis.measures import MEASURES
from ntdyn.analysis.stored import VARIABLES
from ntdyn.hyperparams.rules import (
    count,
    flag,
    fraction,
    index,
    list_of,
    non_negative,
    number,
    positive,
    text,
)
from ntdyn.parameters.tree import ByKind, Checked, Hyperparams, Named, OrNull, Spread
from ntdyn.sharding import devices_problem

# --- shared pieces
_numbers = list_of(number())
_variables = tuple(VARIABLES)
_measures = MEASURES
_trace_series = (
    "train_loss",
    "test_loss",
    "train_accuracy",
    "test_accuracy",
    "learning_rate",
    "grad_norm",
    "weight_density",
)  # fmt: skip  (the trace's scalars)

RESOURCES = {
    "gpu_memory_gb": positive(),
    "host_memory_gb": positive(),
    "trial_block": {"cpu": count(), "gpu": count()},
    "devices": Checked(devices_problem),
    "compilation_cache": text(nullable=True),
}

KEEP = {
    "means": list_of(text(*_variables), empty=True),
    "trials": list_of(text(*_variables), empty=True),
    "repeats": count(nullable=True),
    "max_trials": count(nullable=True),
    "replicates": text("selected", "all"),
}

FINDER = {
    "tol_q": positive(),
    "tol_dq": non_negative(),
    "max_iters": index(),
    "adam_iters": index(),
    "newton_iters": index(),
    "learning_rate": positive(),
    "lr_decay_iters": positive(),
    "float64": flag(),
    "outlier_distance": positive(),
    "unique_tol": positive(),
    "noise_std": non_negative(),
}

_reach_grid = {"grid_n": count(), "n_directions": count(), "reach_length": positive(),
               "n_repeats": count(), "n_steps": count()}  # fmt: skip

# One section per analysis an evaluation runs: its trial builder's arguments (less those
# taken from the model: workspace, n_units) and what it keeps.
ANALYSES = {
    "plant_perts": {
        **_reach_grid, "keep": KEEP,
        "pert_type": text("trained", "curl", "constant"),
        "amplitudes": {"curl": _numbers, "constant": _numbers},
        "sisu": _numbers,
    },
    "feedback_perts": {
        "amplitudes": {"position": _numbers, "velocity": _numbers}, "sisu": _numbers,
        "grid_n": count(), "n_directions": count(), "n_repeats": count(),
        "impulse_start": index(), "impulse_steps": count(), "n_steps": count(), "keep": KEEP,
    },
    "sisu_pert": {
        **_reach_grid, "keep": KEEP,
        "sisu_start": number(), "sisu_ends": _numbers, "step_at": index(),
        "curl_amps": _numbers, "tasks": list_of(text("steady", "reach")),
    },
    "unit_perts": {
        "stim_amps": _numbers, "stim_start": index(), "stim_steps": count(),
        "curl_amps": _numbers, "sisu": _numbers, "grid_n": count(), "n_repeats": count(),
        "n_steps": count(), "keep": KEEP,
    },
    "unit_ablation": {**_reach_grid, "keep": KEEP, "sisu": _numbers},
    "tms_tdcs": {
        **_reach_grid, "keep": KEEP,
        "tms_amps": _numbers, "tms_fraction": fraction(), "tms_start": index(),
        "tms_steps": count(), "tdcs_amps": _numbers, "seed": index(),
    },
}  # fmt: skip

POPULATION = {
    "fps_steady": {"sisu": _numbers, "grid_n": count(), "n_candidates": count(),
                   "n_steps": count(), "seed": index(), "finder": FINDER},
    "pca_tangling": {"start": index(), "stop": count(), "n_components": count(),
                     "tangling_pcs": count()},
    "fps_reach": {"start": index(), "stop": count(), "n_directions": count(),
                  "pert_amp": number(), "finder": FINDER},
    "steady_state_dynamics": {"n_modes": count(), "amplitude": positive(), "n_steps": count(),
                              "slow_threshold": positive()},
}  # fmt: skip

FIGURES = {
    "n_plot_directions": count(),
    "loss_smoothing": count(),
    "aligned_profiles": {"group": text(), "split": text(nullable=True)},
    "n_profile_units": count(),
    "n_ablation_units": count(),
    "ablation_measures": list_of(text(*_measures)),
    "pc_colour_by": text(),
    "dose_measures": list_of(text(*_measures)),
}

# Training state saved for resume (`ntdyn.training.checkpoint.CheckpointConfig`); null: none.
CHECKPOINT = OrNull({"min_interval_s": non_negative(), "max_overhead": number(gt=0, le=1)})
# unroll: time steps per loop iteration of a trial's scan (`ntdyn.models.unroll.ScanUnroll`);
# null: auto (the whole trial on GPU/TPU, 1 on the CPU).
TRAINING_OPTIONS = {"progress": flag(), "metric_every": count(), "record_every": index(),
                    "checkpoint": CHECKPOINT, "unroll": count(nullable=True)}  # fmt: skip


def experiment(analyses: tuple[str, ...], population: tuple[str, ...] = ()) -> dict:
    """An experiment (`analysis_part1`, ...): its sweep, training, evaluations, figures."""
    sections = {
        "training": {
            "hyperparams": Hyperparams("reaching"),
            "overrides": Hyperparams("reaching"),
            "spread": Spread("reaching"),
        },
        "training_options": TRAINING_OPTIONS,
        "evaluation": {"seed": index(), "keep": KEEP, **{a: ANALYSES[a] for a in analyses}},
        "figures": FIGURES,
    }
    if population:
        sections["population"] = {p: POPULATION[p] for p in population}
    return sections


# The spiking options (`ntdyn.pipelines.task_vs_data.nodes.SPIKING_KEYS`, SPIKING_DEFAULTS):
# the shared block, and a source's own block of any of them.
SPIKING = {
    "n_trials": count(), "n_valid": count(), "n_held_in": count(), "n_held_out": count(),
    "rate_scaling": positive(), "rectifier": text("exp", "softplus"), "seed": index(),
    # optional: per_neuron (default) | global (the benchmark's one mean and std)
    "standardise": text("per_neuron", "global"),
}  # fmt: skip


def _source(kind: str) -> dict:
    # spiking, data_models: optional, the source's own settings merged over the shared blocks
    # (`ntdyn.pipelines.task_vs_data.per_source`; a data model the shared block lacks is
    # refused by the plan node, which knows the merged set)
    return {"kind": text(kind), "hyperparams": Hyperparams(kind),
            "overrides": Hyperparams(kind), "spread": Spread(kind),
            # unroll (optional): this source's scan unroll over training_options.unroll
            "unroll": count(nullable=True),
            "spiking": OrNull(SPIKING),
            "data_models": OrNull(Named(Hyperparams("data_model")))}  # fmt: skip


TASK_VS_DATA = {
    # unroll (optional): the flip-flop and MultiTask sources' scan unroll, as in TRAINING_OPTIONS
    # (null or absent: the model's default, 8 steps per iteration on accelerators); a source's
    # own sources.<name>.unroll comes first
    "training_options": {"progress": flag(), "metric_every": count(), "checkpoint": CHECKPOINT,
                         "unroll": count(nullable=True)},
    # null removes a source or data model the base conf lists (an environment's soft merge
    # cannot delete a key)
    "sources": Named(OrNull(ByKind("kind", {"flipflop": _source("flipflop"),
                                            "reaching": _source("reaching"),
                                            "multitask": _source("multitask")}))),  # fmt: skip
    "spiking": SPIKING,
    "data_models": Named(Hyperparams("data_model")),
    "comparison": {
        "seed": index(), "n_candidates": count(), "fixed_points": FINDER,
        "dsa": {"n_delays": count(), "rank": count(), "iters": count()},
        # optional: add the benchmark's co-bps (neurons from index n_inputs on) as co_bps_ctdb
        "co_bps_ctdb": flag(),
        # optional: score the table's metrics on each trial's bins only (MultiTask's trials end
        # before the array does; the benchmark cuts every array to the trial's length)
        "trial_length_mask": flag(),
    },
    "figures": {"n_trials": count()},
}  # fmt: skip

TRAINING_DYNAMICS = {
    "training_options": {"progress": flag(), "metric_every": count(), "checkpoint": CHECKPOINT},
    "hyperparams": Hyperparams("recorded_mlp"),
    "analyses": {
        "pca": {"n_components": count()},
        "psd": {"n_components": count()},
        "tsne": {"perplexity": positive(), "seed": index()},
        "correlation": {"n_pairs": count()},
        "ccm": {"pairs": list_of(list_of(text(*_trace_series), length=2)),
                "embedding_dim": count(), "tau": count(), "sample": count(), "seed": index()},
        "ar": {"series": text(*_trace_series), "order": count(),
               "train_fraction": number(gt=0, le=0.99)},
        "states": {"n_components": count(), "n_frequencies": count(), "perplexity": positive(),
                   "grid": count(), "sigma": positive(), "seed": index()},
    },
}  # fmt: skip

# The experiments' analyses and population analyses: ntdyn.pipelines.experiment.EXPERIMENTS
PARAMETERS = MappingProxyType({
    "resources": RESOURCES,
    "analysis_part1": experiment(("plant_perts", "feedback_perts")),
    "analysis_part2": experiment(
        ("plant_perts", "feedback_perts", "sisu_pert", "unit_perts", "unit_ablation", "tms_tdcs"),
        ("fps_steady", "pca_tangling", "steady_state_dynamics", "fps_reach"),
    ),
    "task_vs_data": TASK_VS_DATA,
    "training_dynamics": TRAINING_DYNAMICS,
})  # fmt: skip
