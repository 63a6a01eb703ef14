"""Hypothesis: malformed parameter sets for every pipeline are refused, naming the parameter.

Each example takes the project's real parameters (conf/base), picks a parameter of one
pipeline's section and breaks it: an unknown (misspelt) key, a wrong type, a value out of
its range, an empty list, NaN or infinity. The check must refuse it with a problem that
names that parameter (the real `kedro run` refusing before anything is written is
test_refused_run.py)."""

import copy
import math

from conf_params import conf_parameters
from hypothesis import given, settings
from hypothesis import strategies as st

from ntdyn.hyperparams.rules import Rule
from ntdyn.parameters import parameter_problems
from ntdyn.parameters.spec import PARAMETERS
from ntdyn.parameters.tree import ByKind, Hyperparams, Named, OrNull, Spread

BASE = conf_parameters()
PIPELINES = ("analysis_part1", "analysis_part2", "task_vs_data", "training_dynamics")


def rule_at(node, keys: list[str]) -> Rule | None:
    """The rule of the leaf at `keys` under `node` (None: a spread axis or a zip list)."""
    if isinstance(node, Rule):
        return node if not keys else None
    if isinstance(node, Hyperparams):
        return node.rules.get("__".join(keys))
    if isinstance(node, Spread):
        return None
    if isinstance(node, Named):
        return rule_at(node.node, keys[1:])
    if isinstance(node, OrNull):
        return rule_at(node.node, keys)
    if isinstance(node, ByKind):
        return None if not keys else rule_at(node.variants["flipflop"], keys)
    return rule_at(node[keys[0]], keys[1:]) if keys and keys[0] in node else None


def leaves(value, keys=()):
    """(keys, value) of every leaf of the real parameters (lists are leaves)."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from leaves(item, (*keys, key))
    else:
        yield list(keys), value


LEAVES = {p: [k for k, _ in leaves(BASE[p], (p,))] for p in PIPELINES}


def reported(keys: list[str]) -> str:
    """The dotted name the check reports for the leaf at `keys` (spread keys stay flat)."""
    if "spread" in keys:
        at = keys.index("spread")
        return ".".join(keys[: at + 2])
    return ".".join(keys)


def set_at(params: dict, keys: list[str], value) -> None:
    node = params
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value


def malformed(rule: Rule | None, current) -> list:
    """Values that break `rule` (any rule: NaN, infinities, a wrong type)."""
    bad = [math.nan, math.inf, -math.inf, [{"not": "a value"}], {"not": "a value"}]
    if rule is not None and rule.kind in ("number", "integer"):
        bad += ["text", True, [1.0]]
        if rule.gt is not None:
            bad.append(rule.gt)
        if rule.ge is not None:
            bad.append(rule.ge - 1)
        if rule.le is not None:
            bad.append(rule.le + 1)
    if rule is not None and rule.kind == "integer":
        bad.append(1.5)
    if rule is not None and rule.kind in ("flag", "text"):
        bad += [3, ["a"]] + ([] if not rule.choices else ["not-a-choice"])
    if (
        (rule is None or rule.kind == "list")
        and isinstance(current, list)
        and not (rule is not None and rule.empty)
    ):
        bad.append([])  # an empty list (a sweep axis, an amplitude list, ...)
    return bad


@st.composite
def broken_parameters(draw):
    pipeline = draw(st.sampled_from(PIPELINES))
    keys = draw(st.sampled_from(LEAVES[pipeline]))
    params = copy.deepcopy(BASE)
    current = params
    for key in keys:
        current = current[key]
    how = draw(st.sampled_from(["unknown key", "bad value"]))
    if how == "unknown key":
        typo = keys[-1] + draw(st.sampled_from(["x", "_2", "s"]))
        set_at(params, [*keys[:-1], typo], current)
        return params, reported([*keys[:-1], typo]), how
    value = draw(st.sampled_from(malformed(rule_at(PARAMETERS, keys), current)))
    set_at(params, keys, value)
    return params, reported(keys), how


@settings(max_examples=300)
@given(broken_parameters())
def test_every_malformed_parameter_set_is_refused_by_name(case):
    params, name, how = case
    problems = parameter_problems(params)
    assert problems, f"{how} at {name} was accepted"
    named = [p for p in problems if p.startswith(name)]
    assert named, f"{how} at {name}: no problem names it: {problems}"
    if how == "unknown key":
        assert "unknown parameter" in named[0]


def test_every_pipeline_has_its_parameters_declared():
    for pipeline in PIPELINES:
        assert LEAVES[pipeline], pipeline
        assert parameter_problems({pipeline: BASE[pipeline]}) == []
