"""The parameter check: unknown names with the closest known one, and each malformed kind."""

import copy
import math

import pytest
from conf_params import conf_parameters

from ntdyn.parameters import ParameterError, parameter_problems, validate_parameters

BASE = conf_parameters()


def with_change(path: str, value, params=None) -> dict:
    """A copy of the base parameters with `value` at the dotted `path` (created if absent)."""
    params = copy.deepcopy(params or BASE)
    *parents, leaf = path.split(".")
    node = params
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return params


@pytest.mark.parametrize("env", [None, "full", "ctdb"])
def test_conf_base_full_and_ctdb_validate(env):
    assert parameter_problems(conf_parameters(env)) == []


def test_a_misspelt_hyperparameter_names_the_closest_known_one():
    params = with_change("analysis_part1.training.hyperparams.train.lerning_rate", 0.1)
    assert parameter_problems(params) == [
        "analysis_part1.training.hyperparams.train.lerning_rate: unknown parameter; "
        "did you mean analysis_part1.training.hyperparams.train.learning_rate?"
    ]


def test_a_key_matching_nothing_at_its_level_is_searched_in_the_whole_tree():
    params = with_change(
        "train", {"pert": {"std": -1.0}}
    )  # what `--params train.pert.std=-1.0` gives
    assert parameter_problems(params) == [
        "train.pert.std: unknown parameter; "
        "did you mean analysis_part1.training.hyperparams.train.pert.std?"
    ]


def test_a_dotted_key_given_flat_is_refused_with_how_to_give_it():
    params = with_change(
        "analysis_part1.training_options", BASE["analysis_part1"]["training_options"]
    )
    params["analysis_part1.training_options.progress"] = False
    (problem,) = parameter_problems(params)
    assert problem.startswith(
        "analysis_part1.training_options.progress: unknown parameter as one dotted key"
    )


def test_misspelt_names_in_every_kind_of_section():
    cases = [  # (section, misspelt, known)
        ("analysis_part2.evaluation.plant_perts", "n_repeat", "n_repeats"),
        ("analysis_part2.population.fps_steady.finder", "tol_qq", "tol_q"),
        ("analysis_part1.evaluation.keep", "mean", "means"),
        ("analysis_part1.training.spread", "train__pert__stdd", "train__pert__std"),
        ("task_vs_data.data_models.lfads.train", "kl_wieght", "kl_weight"),
        ("task_vs_data.sources.flipflop.hyperparams.task", "n_bit", "n_bits"),
        ("training_dynamics.analyses.ccm", "embeding_dim", "embedding_dim"),
        ("resources", "gpu_memory", "gpu_memory_gb"),
    ]
    for section, misspelt, known in cases:
        typo, known = f"{section}.{misspelt}", f"{section}.{known}"
        value = [1.0] if "spread" in typo else 1
        assert parameter_problems(with_change(typo, value)) == [
            f"{typo}: unknown parameter; did you mean {known}?"
        ], typo


def test_an_analysis_the_experiment_does_not_run_is_unknown():
    params = with_change("analysis_part1.evaluation.unit_perts", {"grid_n": 1})
    assert parameter_problems(params) == [
        "analysis_part1.evaluation.unit_perts: unknown parameter; "
        "did you mean analysis_part1.evaluation.plant_perts?"
    ]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            "analysis_part1.training.hyperparams.train.learning_rate",
            0.0,
            "= 0.0: must be a finite number > 0",
        ),
        (
            "analysis_part1.training.hyperparams.train.learning_rate",
            -0.1,
            "= -0.1: must be a finite number > 0",
        ),
        (
            "analysis_part1.training.hyperparams.train.pert.std",
            -1.0,
            "= -1.0: must be a finite number >= 0",
        ),
        (
            "analysis_part1.training.hyperparams.train.pert.std",
            math.nan,
            "= nan: must be a finite number >= 0",
        ),
        (
            "analysis_part1.training.hyperparams.train.pert.std",
            math.inf,
            "= inf: must be a finite number >= 0",
        ),
        (
            "analysis_part1.training.hyperparams.model.hidden_size",
            "32",
            "= '32': must be an integer >= 1",
        ),
        (
            "analysis_part1.training.hyperparams.model.hidden_size",
            2.5,
            "= 2.5: must be an integer >= 1",
        ),
        ("analysis_part1.training.hyperparams.model.sisu_input", 1, "= 1: must be true or false"),
        (
            "analysis_part1.training.hyperparams.train.method",
            "sgd",
            "= 'sgd': must be one of 'bcs', 'dai', 'fixed', 'pai-asf'",
        ),
        (
            "analysis_part1.training.hyperparams.train.n_batches",
            True,
            "= True: must be an integer >= 1",
        ),
        (
            "analysis_part1.training.hyperparams.train.divergence_factor",
            -1.0,
            "= -1.0: must be a finite number > 0",
        ),
        ("analysis_part1.evaluation.seed", -1, "= -1: must be an integer >= 0"),
        (
            "analysis_part1.evaluation.plant_perts.sisu",
            [],
            "= []: must be a non-empty list of items each a finite number",
        ),
        (
            "analysis_part1.evaluation.plant_perts.sisu",
            [0.0, math.inf],
            "= [0.0, inf]: must be a non-empty list of items each a finite number",
        ),
        ("analysis_part1.evaluation.keep.repeats", 0, "= 0: must be an integer >= 1 or null"),
        (
            "analysis_part2.population.pca_tangling.n_components",
            -3,
            "= -3: must be an integer >= 1",
        ),
        (
            "analysis_part2.evaluation.tms_tdcs.tms_fraction",
            1.5,
            "= 1.5: must be a finite number in [0, 1]",
        ),
        ("task_vs_data.spiking.rectifier", "relu", "= 'relu': must be one of 'exp', 'softplus'"),
        (
            "task_vs_data.data_models.sae_gru.train.rollout_horizons",
            [],
            "= []: must be a non-empty list",
        ),
        (
            "training_dynamics.hyperparams.model.hidden_sizes",
            [32, 0],
            "= [32, 0]: must be a non-empty list of items each an integer >= 1",
        ),
        (
            "training_dynamics.analyses.ccm.pairs",
            [["test_loss"]],
            "= [['test_loss']]: must be a non-empty list of items each a non-empty list of 2",
        ),
        ("resources.gpu_memory_gb", -1, "= -1: must be a finite number > 0"),
        ("training_dynamics.training_options.progress", "yes", "= 'yes': must be true or false"),
    ],
)
def test_each_malformed_value_is_refused_naming_parameter_value_and_rule(path, value, expected):
    (problem,) = parameter_problems(with_change(path, value))
    assert problem.startswith(f"{path} {expected}")


def test_spread_axes_must_be_non_empty_lists_of_allowed_values():
    spread = "analysis_part1.training.spread"
    assert parameter_problems(with_change(f"{spread}.train__pert__std", [])) == [
        f"{spread}.train__pert__std = []: a sweep axis must be a non-empty list of values, "
        "each a finite number >= 0"
    ]
    assert parameter_problems(with_change(f"{spread}.train__pert__std", [0.0, -1.0])) == [
        f"{spread}.train__pert__std[1] = -1.0: must be a finite number >= 0"
    ]
    # null drops an axis (how conf/full replaces the demo axis)
    assert parameter_problems(with_change(f"{spread}.train__pert__std", None)) == []
    zipped = [{"train__pert__type": ["curl", "viscous"], "train__seed": [0]}]
    assert parameter_problems(with_change(f"{spread}.zip", zipped)) == [
        f"{spread}.zip[0].train__pert__type[1] = 'viscous': must be one of 'constant', 'curl'",
        f"{spread}.zip[0]: lists that vary together must have equal lengths, "
        "got {'train__pert__type': 2, 'train__seed': 1}",
    ]
    assert parameter_problems(with_change(f"{spread}.zip", [])) != []


def test_a_source_of_unknown_kind_is_refused():
    params = with_change("task_vs_data.sources.flipflop.kind", "lstm")
    assert parameter_problems(params) == [
        "task_vs_data.sources.flipflop.kind = 'lstm': must be one of 'flipflop', 'reaching', "
        "'multitask'"
    ]


def test_a_section_that_is_not_a_mapping_is_refused():
    (problem,) = parameter_problems(with_change("analysis_part1.figures", [1, 2]))
    assert problem.startswith(
        "analysis_part1.figures = [1, 2]: must be a mapping of n_plot_directions"
    )


def test_validate_parameters_raises_every_problem_at_once():
    params = with_change("analysis_part1.evaluation.seed", -1, with_change("resources.gpu", 1))
    with pytest.raises(ParameterError) as raised:
        validate_parameters(params)
    assert len(raised.value.problems) == 2
    assert str(raised.value).startswith("2 invalid parameter(s), nothing was run:")
    validate_parameters(BASE)  # valid: no error


def test_a_kind_that_is_not_a_name_is_refused_not_a_crash():
    # found by the hypothesis test: `kind: [..]` raised TypeError (unhashable) in the check
    first = next(iter(BASE["task_vs_data"]["sources"]))
    params = with_change(f"task_vs_data.sources.{first}.kind", ["flipflop"])
    problems = parameter_problems(params)
    assert any(p.startswith(f"task_vs_data.sources.{first}.kind = ['flipflop']: must be one of")
               for p in problems), problems  # fmt: skip


def test_null_removes_a_source_or_data_model_and_the_ctdb_options_are_checked():
    params = with_change("task_vs_data.sources.reaching", None)
    params = with_change("task_vs_data.data_models.latent_evolution", None, params)
    assert parameter_problems(params) == []
    bad = {
        "task_vs_data.sources.flipflop.hyperparams.task.target_coding": "bits",
        "task_vs_data.sources.flipflop.hyperparams.task.quiet_steps": -1,
        "task_vs_data.spiking.standardise": "zscore",
        "task_vs_data.comparison.co_bps_ctdb": "yes",
    }
    params = BASE
    for path, value in bad.items():
        params = with_change(path, value, params)
    problems = parameter_problems(params)
    assert len(problems) == len(bad)
    for (path, value), problem in zip(bad.items(), problems, strict=True):
        assert problem.startswith(f"{path} = {value!r}: must be"), problem
    assert "'sign', 'zero_one'" in problems[0] and "'global', 'per_neuron'" in problems[2]


def test_a_sources_own_spiking_and_data_model_settings_are_declared():
    own = "task_vs_data.sources.flipflop"
    params = with_change(f"{own}.spiking", {"n_trials": 40, "n_valid": 10})
    params = with_change(f"{own}.data_models", {"sae_gru": {"train": {"learning_rate": 0.005}}},
                         params)  # fmt: skip
    assert parameter_problems(params) == []
    assert parameter_problems(with_change(f"{own}.spiking", None)) == []  # none of its own
    cases = [  # (path, value, the problem)
        (f"{own}.spiking.n_trial", 40,
         f"{own}.spiking.n_trial: unknown parameter; did you mean {own}.spiking.n_trials?"),
        (f"{own}.spiking.n_trials", 0, f"{own}.spiking.n_trials = 0: must be an integer >= 1"),
        (f"{own}.data_models.sae_gru.train.lerning_rate", 0.005,
         f"{own}.data_models.sae_gru.train.lerning_rate: unknown parameter; "
         f"did you mean {own}.data_models.sae_gru.train.learning_rate?"),
        (f"{own}.data_models.sae_gru.train.learning_rate", -1.0,
         f"{own}.data_models.sae_gru.train.learning_rate = -1.0: must be a finite number > 0"),
    ]  # fmt: skip
    for path, value, problem in cases:
        assert parameter_problems(with_change(path, value)) == [problem], path
