"""A source's own spiking, data-model and scan-unroll settings, merged over the shared blocks.

`sources.<name>.spiking: {key: value}` replaces those keys of the shared `spiking` block for
that source only; `sources.<name>.data_models: {<model>: {...}}` is deep-merged over that
data model's shared options (`{sae_gru: {train: {learning_rate: 0.005}}}` changes one
option). The benchmark sets both per source (MultiTask: 750 / 150 trials, SAE-GRU learning
rate 5e-3; 3BFF: 1000 / 200, 2e-3), which one shared block cannot say.

The merge rule lives here only; the merged blocks are then checked by the same checks as
the shared ones (`nodes._check_spiking`, `nodes._data_model_rows`) and name the data sets
and models (their records and hashes) exactly as a shared block would. A source without
overrides gets the shared blocks themselves, so its hashes do not change.

`sources.<name>.unroll` sets that source's scan unroll (time steps per loop iteration of its
training's trials, `ntdyn.models.unroll`) over `training_options.unroll`: how the program runs,
not what it computes, so it names no record. A long run of short trials (MultiTask's 187 500
updates) pays for a whole-trial unroll's compile; a short one (3BFF's 2000) does not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ntdyn.hyperparams import flatten, unflatten

SOURCES = "task_vs_data.sources"
SPIKING = "task_vs_data.spiking"
DATA_MODELS = "task_vs_data.data_models"


def source_name(label: str, sources: Mapping) -> str:
    """The `sources` entry a source label comes from: `name` itself, or `name[<member>]` for
    a member of its spread (`plan_sources`' labels)."""
    for name in sources:
        if label == name or label.startswith(f"{name}["):
            return name
    raise KeyError(f"source {label!r} is none of {SOURCES} {list(sources)}")


def _entry(sources: Mapping | None, label: str) -> Mapping:
    """The `sources` entry of source `label` ({} where there is none)."""
    return (sources[source_name(label, sources)] or {}) if sources else {}


def _own(sources: Mapping | None, label: str, key: str) -> dict:
    """The source's own block `key` (spiking or data_models); {} where it sets none."""
    return dict(_entry(sources, label).get(key) or {})


def source_unroll(options: Mapping, sources: Mapping | None, label: str) -> int | None:
    """The scan unroll of source `label`'s training: its own `unroll` where it sets one, else
    `training_options.unroll`; None: the model's default (8 steps on accelerators)."""
    own = _entry(sources, label).get("unroll")
    if own is not None:
        return int(own)
    value = options.get("unroll")
    return None if value is None else int(value)


def source_spiking(spiking: dict, sources: Mapping | None, label: str) -> dict:
    """The spiking options of source `label`: the shared block with the source's own keys
    replaced. `sources` None (or a source without `spiking`) gives the shared block."""
    own = _own(sources, label, "spiking")
    return spiking | own if own else spiking


def source_data_models(data_models: dict, sources: Mapping | None, label: str) -> dict:
    """The data models fitted to source `label`: each shared model with the source's own
    options for it deep-merged over (a nested key replaces only itself)."""
    own = _own(sources, label, "data_models")
    if not own:
        return data_models
    return {
        name: unflatten(flatten(spec) | flatten(own[name])) if name in own else spec
        for name, spec in data_models.items()
    }


def spiking_path(name: str, own: Mapping) -> Callable[[str], str]:
    """Where a merged spiking option was set: the source's block or the shared one (for the
    errors of the merged block's check)."""
    return lambda key: f"{SOURCES}.{name}.spiking.{key}" if key in own else f"{SPIKING}.{key}"


def check_source_blocks(
    sources: Mapping, spiking_keys: tuple[str, ...], model_names: list[str]
) -> None:
    """Refuse a source's own block that names something the shared blocks do not have: a
    spiking option not in `spiking_keys`, a data model not in `model_names` (the shared
    models that are not null). The merged values are checked by the shared blocks' checks."""
    for name, spec in sources.items():
        own_spiking = spec.get("spiking")
        if own_spiking is not None:
            _mapping(own_spiking, f"{SOURCES}.{name}.spiking", "spiking options")
            for key in own_spiking:
                if key not in spiking_keys:
                    raise ValueError(f"{SOURCES}.{name}.spiking.{key}: unknown spiking option; "
                                     f"allowed: {list(spiking_keys)}")  # fmt: skip
        own_models = spec.get("data_models")
        if own_models is not None:
            _mapping(own_models, f"{SOURCES}.{name}.data_models", "data models to options")
            for model, options in own_models.items():
                where = f"{SOURCES}.{name}.data_models.{model}"
                if model not in model_names:
                    raise ValueError(f"{where}: not a data model of {DATA_MODELS}; "
                                     f"allowed: {model_names}")  # fmt: skip
                _mapping(options, where, "that data model's options")


def _mapping(value, path: str, what: str) -> None:
    if not isinstance(value, Mapping):
        raise ValueError(f"{path} = {value!r}: must be a mapping of {what}")
