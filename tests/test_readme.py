"""The README names every registered analysis and figure kind (it is how users find them)."""

from __future__ import annotations

import re
from pathlib import Path

from ntdyn.pipelines.evaluation.nodes import ANALYSES
from ntdyn.pipelines.experiment import EXPERIMENTS
from ntdyn.pipelines.figures.pipeline import FIGURES
from ntdyn.pipelines.population.nodes import POPULATION_ANALYSES
from ntdyn.pipelines.task_vs_data.pipeline import FIGURE_KINDS as TVD_FIGURES
from ntdyn.pipelines.training_dynamics.nodes import FIGURE_KINDS as TD_FIGURES
from ntdyn.pipelines.training_dynamics.pipeline import ANALYSES as TD_ANALYSES

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
SECTION = README.split("### Every registered analysis and figure kind", 1)[-1].split("\n## ")[0]


def _named(text: str) -> set[str]:
    return set(re.findall(r"`([a-z0-9_]+)`", text))


def test_the_readme_lists_every_registered_analysis_and_figure_kind():
    registered = {
        *ANALYSES, *POPULATION_ANALYSES, *FIGURES, *TVD_FIGURES, *TD_FIGURES,
        *(n.name for n in TD_ANALYSES),
    }  # fmt: skip
    missing = registered - _named(SECTION)
    assert not missing, f"README's registry section does not name {sorted(missing)}"


def test_every_experiment_only_uses_registered_names():
    for name, spec in EXPERIMENTS.items():
        assert set(spec["analyses"]) <= set(ANALYSES), name
        assert set(spec["figures"]) <= set(FIGURES), name
        assert set(spec.get("population", ())) <= set(POPULATION_ANALYSES), name
