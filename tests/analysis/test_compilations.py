"""One compilation per shape inside a run: fps_steady over several models, SISU values and
grid centres compiles each of its programs once, and a second pass over other models of the
same shape compiles nothing at all."""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parents[1]))
from ntdyn.analysis.dynamics import trace_counts  # noqa: E402
from ntdyn.compilations import CompilationCounter  # noqa: E402
from ntdyn.models.controller import ensemble_from_hyperparams  # noqa: E402
from ntdyn.pipelines.population.nodes import steady_fixed_points  # noqa: E402
from ntdyn.training.loop import TrainedEnsemble  # noqa: E402
from ntdyn.training.selection import select_replicate  # noqa: E402
from science_fixtures import hp  # noqa: E402

HIDDEN = 9  # a shape no other test compiles
POPULATION = {
    "fps_steady": {"sisu": [-1.0, 0.0, 2.0], "grid_n": 2, "n_candidates": 6, "n_steps": 4,
                   "seed": 3, "finder": {"adam_iters": 20, "newton_iters": 5}},
}  # fmt: skip


class _KeptTrials:
    """What fps_steady reads of an evaluation's model (`ModelArrays.trials`): kept trials."""

    def __init__(self, hidden: np.ndarray):
        self._hidden = hidden  # (replicate, trial, time, unit)

    def trials(self, name: str, replicate: int) -> np.ndarray:
        assert name == "hidden"
        return self._hidden[replicate]


def _models(seeds):
    """Untrained SISU controllers (2 replicates each), their records and steady states."""
    params = hp(model__hidden_size=HIDDEN, model__sisu_input=True)
    models, states, rows = {}, {}, []
    for seed in seeds:
        name = f"model{seed}"
        ensemble = ensemble_from_hyperparams(params, jax.random.split(jax.random.PRNGKey(seed)))
        selection = select_replicate(np.array([1.0, 2.0]), 2.0)
        models[name] = TrainedEnsemble(params, name, ensemble, pd.DataFrame(), selection)
        hidden = np.random.default_rng(seed).normal(size=(2, 3, 5, HIDDEN)).astype(np.float32)
        states[name] = _KeptTrials(hidden)
        rows.append({"hash": name, "best_replicate": selection.best})
    return models, pd.DataFrame(rows), states


def test_fps_steady_compiles_once_per_shape():
    traces_before = trace_counts()
    models, records, states = _models([0, 1])
    with CompilationCounter() as first:
        points, _ = steady_fixed_points(models, records, states, POPULATION)
    # 2 models x 3 SISU x 4 centres = 24 searches, each with its own candidates and input
    assert set(points.groupby("hash")["sisu"].nunique()) == {3}
    assert points.groupby("hash")["centre_index"].nunique().eq(4).all()
    traced = {k: v - traces_before[k] for k, v in trace_counts().items()}
    assert traced["autonomous_states"] == 1  # one shape: one trace for all 24
    assert traced["input_jacobians"] == 1  # padded: whatever the number of points found
    assert first.count > 0

    # other models, other SISU values, other centres of the same shapes: nothing compiles
    models, records, states = _models([5, 6, 7])
    again = {"fps_steady": {**POPULATION["fps_steady"], "sisu": [1.5, -2.0]}}
    with CompilationCounter() as second:
        steady_fixed_points(models, records, states, again)
    assert trace_counts()["autonomous_states"] == traces_before["autonomous_states"] + 1
    assert second.count == 0, f"{second.count} compilations for shapes already compiled"
