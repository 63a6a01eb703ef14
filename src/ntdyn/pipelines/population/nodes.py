"""Population-analysis nodes: thin wrappers over ntdyn.analysis (fixed points, dynamics)."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ntdyn.analysis import LabelledArrays
from ntdyn.analysis.arrays import load_labelled, save_labelled
from ntdyn.analysis.dynamics import (
    autonomous_states,
    controller_step,
    effective_directions,
    eigvec_stimulation,
    input_jacobians,
    jacobians_along,
    q_hessian_spectrum,
    steady_state_inputs,
)
from ntdyn.analysis.fixed_points import (
    FixedPointConfig,
    FixedPoints,
    Search,
    search_fixed_points,
    x64,
)
from ntdyn.analysis.pca import fit_pca, project, time_window
from ntdyn.analysis.stored import EvaluationArrays, ModelArrays
from ntdyn.analysis.tangling import tangling
from ntdyn.hyperparams import flatten, hash_of, validate_table
from ntdyn.resources import ResourceBudget
from ntdyn.sharding import Devices
from ntdyn.store import RecordStore, reuse_or_compute
from ntdyn.tasks.reaching import grid_centres
from ntdyn.training.loop import TrainedEnsemble

log = logging.getLogger(__name__)

# Feedback inputs of the controller: [goal (2), p (2), v (2), (sisu)]; position feedback is 2:4.
POSITION_FEEDBACK = slice(2, 4)


def _best_controller(ensemble, best: int):
    return jax.tree.map(lambda x: x[best], ensemble.model)


def _each_model(models: Mapping, desc: str) -> Iterator[tuple[str, TrainedEnsemble]]:
    """(hash, ensemble) per model, loaded one at a time (a PartitionedDataset gives lazy
    loaders): no more than one model is held at once."""
    for h, model in tqdm(models.items(), desc=desc, unit="model", total=len(models)):
        yield h, (model() if callable(model) else model)


def _spectrum_table(eigenvalues: np.ndarray, ids: dict) -> pd.DataFrame:
    """One row per point x mode of `eigenvalues` (M, H), with the columns of `ids`.

    Built in one piece: fully trained networks have up to one distinct slow point per
    candidate, and a DataFrame per point (a thousand per search, 175 searches per model)
    was most of fps_steady's time at research scale.
    """
    m, dim = eigenvalues.shape
    lam = eigenvalues.reshape(-1)
    return pd.DataFrame({**{k: np.repeat(v, m * dim) for k, v in ids.items()},
                         "point": np.repeat(np.arange(m), dim), "mode": np.tile(np.arange(dim), m),
                         "real": lam.real, "imag": lam.imag, "abs": np.abs(lam)})  # fmt: skip


def steady_fixed_points(
    models: dict, model_records: pd.DataFrame, source_states: EvaluationArrays,
    population: dict, devices: Devices | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Fixed points of each model (best replicate) at steady-state inputs, per SISU and centre.

    Candidates: hidden states of the model's own steady-state trials (`source_states`,
    e.g. feedback_perts: every step of the single trials its evaluation kept, a bounded
    sample), run on at the steady input, plus noise. Returns (points:
    one row per unique point with q, kind, stability, |lambda|max and the singular
    values of dh/d(position feedback); eigenvalues: one row per point x mode). devices:
    the local devices the searches are spread over (`search_fixed_points`: search k on
    device k mod n, its candidates' roll-out and its points' input Jacobians there too).
    """
    spec = population["fps_steady"]
    cfg = FixedPointConfig(**spec.get("finder", {}))
    best = model_records.set_index("hash")["best_replicate"]
    rng = np.random.default_rng(int(spec["seed"]))
    n = spec["n_candidates"]
    jobs = deque()  # (hash, step, input, sisu, centre index) of each search, in order

    def searches() -> Iterator[Search]:
        for h, ensemble in _each_model(models, "fps_steady"):
            hp = ensemble.hyperparams
            step = controller_step(_best_controller(ensemble, int(best[h])))
            hidden = source_states[h].trials("hidden", int(best[h]))  # (kept trial, time, unit)
            pool = hidden.reshape(-1, hidden.shape[-1])
            sisu_values = spec["sisu"] if hp["model__sisu_input"] else [None]
            centres = grid_centres(spec["grid_n"], float(hp["task__workspace"]), 0.0)
            for sisu in sisu_values:
                for ci, centre in enumerate(centres):
                    u = steady_state_inputs(centre, sisu)
                    start = pool[rng.choice(len(pool), n, replace=len(pool) < n)]
                    jobs.append((h, step, u, sisu, ci))
                    # candidates: the roll-out's last states, run on the search's device
                    cands = partial(_rolled_out, step, start, u, spec["n_steps"])
                    # eigenvalues alone: nothing reads these points' eigenvectors
                    yield Search(step, cands, u, cfg, seed=int(spec["seed"]), eigenvectors=False)

    points, spectra = [], []
    for fps in search_fixed_points(searches(), devices=devices):
        h, step, u, sisu, ci = jobs.popleft()
        table = fps.table()
        sv = np.zeros((len(table), 2))
        if len(table):
            # padded to the candidate count: one compiled shape whatever the number of
            # unique points found; on the search's device
            padded = np.concatenate([fps.h, np.repeat(fps.h[:1], n - len(table), 0)])
            with jax.default_device(fps.device):
                j_u = input_jacobians(step, padded, np.broadcast_to(u, (n, len(u))))
            sv = np.linalg.svd(j_u[: len(table), :, POSITION_FEEDBACK], compute_uv=False)
        ids = dict(hash=h, sisu=np.nan if sisu is None else float(sisu), centre_index=ci)
        points.append(
            table.assign(
                **ids,
                sv_position_1=sv[:, 0],
                sv_position_2=sv[:, 1],
                h=list(fps.h),  # the point's coordinates (H,), for plots in PC space
                candidates_converged=int(fps.candidates_converged.sum()),
                n_candidates=len(fps.candidates_q),
            )  # fmt: skip
        )
        if len(fps.eigenvalues):
            spectra.append(_spectrum_table(fps.eigenvalues, ids))
    points = validate_table("fixed_points", pd.concat(points, ignore_index=True))
    return points, pd.concat(spectra, ignore_index=True)


def _rolled_out(step, start: np.ndarray, u: np.ndarray, n_steps: int) -> np.ndarray:
    """fps_steady's candidates: the states `start` (N, H) run on n_steps at input u, the last."""
    return autonomous_states(step, start, u, n_steps)[:, -1]


def pca_tangling(
    states: EvaluationArrays, model_records: pd.DataFrame, population: dict
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, LabelledArrays]]:
    """PCA of each model's condition-mean hidden states in a time window, and tangling on it.

    Per model (best replicate), on the hidden states averaged over repeats per condition
    (`means("hidden")`, every condition): PCA fitted on steps [start, stop) of the condition
    means, the condition means projected, and tangling Q(c, t) on their top `tangling_pcs`
    PCs. Russo et al. (2018) compute tangling on condition-averaged trajectories, and fitting
    the PCA on the condition-averaged data (not single trials) is the standard in that
    literature (e.g. Churchland et al. 2012): the components describe the condition
    structure rather than trial-to-trial noise. It needs no single trials, so it covers
    every condition whatever sample of trials the evaluation keeps.

    Returns (pca: hash, component, explained variance; tangling: one row per condition x
    step with its condition columns and `condition`; projections by hash: `projected`
    (condition, time, pc), the condition means projected, rows in the order of
    attrs["conditions"], the condition table (column -> list of values, the evaluation's
    `mean_conditions`: condition columns, hash, condition), with `components` and `mean`).
    """
    spec = population["pca_tangling"]
    best = model_records.set_index("hash")["best_replicate"]
    pca_rows, tangling_rows, projections = [], [], {}
    for h, arrays in tqdm(states.items(), desc="pca_tangling", unit="model"):
        means = arrays.means("hidden", int(best[h]))  # (condition, time, unit)
        window = time_window(means, spec["start"], spec["stop"], time_axis=1)
        pca = fit_pca(window, spec["n_components"])
        projected = project(pca, means)  # (condition, time, k)
        pca_rows.append(pd.DataFrame({
            "hash": h, "component": np.arange(pca.n_components),
            "explained_variance": pca.explained_variance,
            "explained_variance_ratio": pca.explained_variance_ratio,
        }))  # fmt: skip
        labels = arrays.mean_conditions  # row c: condition c (the rows of `means`)
        q = tangling(projected[..., : spec["tangling_pcs"]], float(arrays.attrs["dt"]))
        n_c, n_t = q.shape
        tangling_rows.append(
            labels.loc[np.repeat(np.arange(n_c), n_t)]
            .reset_index(drop=True)
            .assign(hash=h, step=np.tile(np.arange(1, n_t + 1), n_c), Q=q.ravel())
        )
        projections[h] = LabelledArrays(
            {"projected": projected, "components": pca.components, "mean": pca.mean},
            {"projected": ("condition", "time", "pc"), "components": ("pc", "unit"),
             "mean": ("unit",)},
            {"hash": h, "window": [spec["start"], spec["stop"]],
             "conditions": {c: labels[c].tolist() for c in labels.columns}},
        )  # fmt: skip
    return (
        validate_table("pca", pd.concat(pca_rows, ignore_index=True)),
        validate_table("tangling", pd.concat(tangling_rows, ignore_index=True)),
        projections,
    )


def _population_metrics(table: pd.DataFrame, labels: pd.Series) -> dict[str, float]:
    """Per model (and SISU where present): fixed-point counts, or median/max tangling."""
    by = ["hash", "sisu"] if "sisu" in table else ["hash"]
    metrics = {}
    for key, group in table.groupby(by, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        name = labels[key[0]] + ("" if len(key) == 1 else f"/sisu_{key[1]}")
        if "kind" in group:
            metrics[f"{name}/n_fixed"] = float((group["kind"] == "fixed").sum())
            metrics[f"{name}/n_stable"] = float(group["stable"].sum())
        for col in ("fp_shift", "max_abs_eigenvalue", "effective_gain"):
            if col in group:
                metrics[f"{name}/{col}"] = float(group[col].mean())
        if "Q" in group:
            metrics[f"{name}/tangling_median"] = float(group["Q"].median())
            metrics[f"{name}/tangling_max"] = float(group["Q"].max())
    return metrics


def steady_state_dynamics(
    models: dict, model_records: pd.DataFrame, points: pd.DataFrame, population: dict
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Local dynamics at each model's steady-state fixed point, per SISU (central hold).

    Uses the stable fixed point of lowest q (else the lowest-q point). Returns
    (hessian: eigenvalues of the Hessian of q, ascending; eigvec_stim: per top
    Jacobian mode |lambda| and the measured decay of the force response;
    eigvec_responses: force response (N) per mode and step; context: how SISU
    moves the point (distance from the first SISU's point), its spectrum and the
    readout-weighted effective directions (mean |W J| per unit)).
    """
    spec = population["steady_state_dynamics"]
    best = model_records.set_index("hash")["best_replicate"]
    hess_rows, stim_rows, resp_rows, ctx_rows = [], [], [], []
    for h, ensemble in _each_model(models, "steady_dynamics"):
        hp = ensemble.hyperparams
        controller = _best_controller(ensemble, int(best[h]))
        step = controller_step(controller)
        weight = np.asarray(controller.readout.weight)
        # the steady-state centre nearest the origin, with the same grid as fps_steady
        centres = grid_centres(
            population["fps_steady"]["grid_n"], float(hp["task__workspace"]), 0.0
        )
        ci = int(np.argmin(np.linalg.norm(centres, axis=1)))
        centre = centres[ci]
        own = points[(points["hash"] == h) & (points["centre_index"] == ci)]
        reference = None
        for sisu, group in own.groupby("sisu", dropna=False, sort=True):
            pick = group.sort_values(["stable", "q"], ascending=[False, True]).iloc[0]
            h_star = np.asarray(pick["h"], float)
            u_star = steady_state_inputs(centre, None if np.isnan(sisu) else sisu)
            ids = dict(hash=h, sisu=sisu)
            hess, below = q_hessian_spectrum(step, h_star, u_star)
            hess_rows.append(pd.DataFrame({
                **ids, "mode": np.arange(len(hess)), "eigenvalue": hess,
                "negative_bound": below,
            }))  # fmt: skip
            jac = jacobians_along(step, h_star[None], u_star[None])[0]
            lam, vec = np.linalg.eig(jac)
            top = np.argsort(-np.abs(lam), kind="stable")[: spec["n_modes"]]
            responses, decay = eigvec_stimulation(
                step, weight, h_star, u_star, vec[:, top].T, spec["amplitude"], spec["n_steps"]
            )
            stim_rows.append(pd.DataFrame({
                **ids, "mode": np.arange(len(top)), "abs_eigenvalue": np.abs(lam[top]),
                "real": lam[top].real, "imag": lam[top].imag, "decay": decay,
                "peak_force": np.linalg.norm(responses, axis=-1).max(axis=1),
            }))  # fmt: skip
            k, t = responses.shape[:2]
            resp_rows.append(pd.DataFrame({
                **ids, "mode": np.repeat(np.arange(k), t), "step": np.tile(np.arange(1, t + 1), k),
                "fx": responses[..., 0].ravel(), "fy": responses[..., 1].ravel(),
            }))  # fmt: skip
            reference = h_star if reference is None else reference
            eff = effective_directions(weight, jac[None])[0]  # (2, H)
            ctx_rows.append({
                **ids, "fp_shift": float(np.linalg.norm(h_star - reference)),
                "max_abs_eigenvalue": float(np.abs(lam).max()),
                "mean_abs_eigenvalue": float(np.abs(lam).mean()),
                "n_slow_modes": int((np.abs(lam) > spec["slow_threshold"]).sum()),
                "effective_gain": float(np.linalg.norm(eff, axis=0).mean()),
                "q": float(pick["q"]), "stable": bool(pick["stable"]),
                # q recomputed with the input used here: the point must be fixed for it
                "q_at_input": _q_at(step, h_star, u_star),
            })  # fmt: skip
    return (
        validate_table("hessian", pd.concat(hess_rows, ignore_index=True)),
        validate_table("eigvec_stim", pd.concat(stim_rows, ignore_index=True)),
        pd.concat(resp_rows, ignore_index=True),
        validate_table("context", pd.DataFrame(ctx_rows)),
    )


def _reach_steps(ensemble, replicate: int, arrays: ModelArrays, spec: dict):
    """The (reach, step) problems of fps_reach: their ids, inputs u_t and states h_t.

    Reaches: repeat 0, field amplitude `pert_amp`, every evaluated SISU and grid centre,
    `n_directions` spread directions (chosen among all the model's trials,
    `arrays.conditions`); steps [start, stop). Their states are the single trials the
    evaluation kept (`arrays.trials`): a chosen reach outside that sample is an error. At
    step t the network's map is F(h) = cell(u_t, h) with u_t = [goal, observed feedback
    y_t, SISU]; hidden row t - 1 is h_t, the state it acts on. Returns (ids (P, 5): trial,
    direction, step, sisu, condition; inputs (P, n_in); hidden (P, 3, H): h_{t-1}, h_t,
    h_{t+1}), P = reaches x steps, reach by reach.
    """
    hp = ensemble.hyperparams
    cond = arrays.conditions
    keep = (cond["repeat"] == 0) & (cond["pert_amp"] == spec["pert_amp"])
    n_dir = int(cond["direction_index"].max()) + 1
    dirs = np.unique(np.linspace(0, n_dir, spec["n_directions"], endpoint=False).astype(int))
    reaches = cond[keep & cond["direction_index"].isin(dirs)]
    if reaches.empty:
        raise ValueError(
            f"fps_reach: model {arrays.hash} has no trial of repeat 0 at pert_amp = "
            f"{spec['pert_amp']} in directions {dirs.tolist()} (evaluated amplitudes: "
            f"{sorted(cond['pert_amp'].unique().tolist())})"
        )
    kept = pd.Index(arrays.trial_conditions["trial"])
    missing = reaches.loc[~reaches["trial"].isin(kept), "trial"]
    if len(missing):
        raise ValueError(
            f"fps_reach: {len(missing)} of the {len(reaches)} reaches it analyses (model "
            f"{arrays.hash}, trials {missing.tolist()[:10]}) are not among the single trials "
            f"{arrays.attrs['analysis']} kept ({len(kept)} of {len(cond)}): keep them with "
            "`evaluation.plant_perts.keep` (repeats >= 1 and max_trials: null, or a larger "
            "max_trials; trials must include hidden and feedback)"
        )
    rows = kept.get_indexer(reaches["trial"])
    hidden = arrays.trials("hidden", replicate)[rows]  # (reach, time, unit)
    feedback = arrays.trials("feedback", replicate)[rows]
    steps = np.arange(max(spec["start"], 2), min(spec["stop"], hidden.shape[1] - 1))
    n_r, n_s = len(reaches), len(steps)

    def per_step(column: str) -> np.ndarray:  # a reach's value at each of its steps
        return np.repeat(reaches[column].to_numpy(float), n_s)

    ids = np.column_stack([
        per_step("trial"), per_step("direction_index"), np.tile(steps, n_r).astype(float),
        per_step("sisu"), per_step("condition"),
    ])  # fmt: skip
    goal = np.repeat(reaches[["goal_x", "goal_y"]].to_numpy(float), n_s, axis=0)
    sisu = [per_step("sisu")[:, None]] if hp["model__sisu_input"] else []
    inputs = np.concatenate([goal, feedback[:, steps].reshape(n_r * n_s, -1), *sisu], axis=1)
    states = hidden[:, steps[:, None] + np.arange(-2, 1)]  # (reach, step, 3, unit)
    return ids, inputs, states.reshape(n_r * n_s, 3, hidden.shape[-1])


def _reach_search(controller, problems: tuple, cfg: FixedPointConfig) -> Search:
    """One model's fixed-point search along its reaches (see `reach_fixed_points`)."""
    ids, inputs, near = problems
    n_near = near.shape[1]
    return Search(
        controller_step(controller), near.reshape(-1, near.shape[-1]),
        np.repeat(inputs, n_near, axis=0), cfg,
        groups=np.repeat(np.arange(len(ids)), n_near), eigenvectors=False,
    )  # fmt: skip


def _reach_points(h: str, fps: FixedPoints, ids: np.ndarray) -> pd.DataFrame:
    """One model's fixed points along its reaches, from its search, unvalidated."""
    table = fps.table()
    where = ids[table["group"].to_numpy()]
    return table.assign(
        hash=h,
        trial=where[:, 0].astype(int),
        direction_index=where[:, 1].astype(int),
        step=where[:, 2].astype(int),
        sisu=where[:, 3],
        condition=where[:, 4].astype(int),
        h=list(fps.h),
    )


def _reach_effective(h: str, controller, problems: tuple, conditions: pd.DataFrame) -> pd.DataFrame:
    """One model's effective directions along its reaches (see
    `reach_effective_directions`), unvalidated."""
    ids, inputs, near = problems
    jac = jacobians_along(controller_step(controller), near[:, 1], inputs)
    eff = effective_directions(np.asarray(controller.readout.weight), jac)  # (P, 2, H)
    angle = conditions.set_index("trial").loc[ids[:, 0].astype(int), "direction"].to_numpy()
    c, s_ = np.cos(angle)[:, None], np.sin(angle)[:, None]
    parallel = c * eff[:, 0] + s_ * eff[:, 1]
    lateral = -s_ * eff[:, 0] + c * eff[:, 1]
    n_p, n_h = parallel.shape
    return pd.DataFrame({
        "hash": h, "trial": np.repeat(ids[:, 0], n_h).astype(int),
        "direction_index": np.repeat(ids[:, 1], n_h).astype(int),
        "step": np.repeat(ids[:, 2], n_h).astype(int), "sisu": np.repeat(ids[:, 3], n_h),
        "condition": np.repeat(ids[:, 4], n_h).astype(int),
        "unit": np.tile(np.arange(n_h), n_p), "parallel": parallel.ravel(),
        "lateral": lateral.ravel(),
    })  # fmt: skip


def _reach_tables(
    models: dict, model_records: pd.DataFrame, states: EvaluationArrays, population: dict,
    points: bool = True, effective: bool = True, devices: Devices | None = None,
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:  # fmt: skip
    """fps_reach's points and effective-direction tables (validated), each model loaded
    and its reach problems built once for both (the models' searches spread over
    `devices`: model k's on device k mod n, its effective directions there too)."""
    spec = population["fps_reach"]
    cfg = FixedPointConfig(**spec.get("finder", {}))
    best = model_records.set_index("hash")["best_replicate"]
    jobs = deque()  # (hash, controller, problems, stored arrays) of each model, in order

    def each_model() -> Iterator[Search]:
        for h, ensemble in _each_model(models, "fps_reach"):
            r = int(best[h])
            controller, arrays = _best_controller(ensemble, r), states[h]
            problems = _reach_steps(ensemble, r, arrays, spec)
            jobs.append((h, controller, problems, arrays))
            yield _reach_search(controller, problems, cfg)

    point_tables, effective_tables = [], []
    if points:  # the searches, spread; then each model's tables on its search's device
        done = (
            (fps, *jobs.popleft()) for fps in search_fixed_points(each_model(), devices=devices)
        )
    else:  # no search: the effective directions alone, on JAX's default device
        done = ((None, *jobs.popleft()) for _ in each_model())
    for fps, h, controller, problems, arrays in done:
        with jax.default_device(fps.device) if fps is not None else nullcontext():
            if points:
                table = _reach_points(h, fps, problems[0])
                # the reach's start: SISU's effect is compared within one reach (centre, direction)
                centres = arrays.conditions.set_index("trial")["centre_index"]
                point_tables.append(
                    table.assign(centre_index=centres.loc[table["trial"]].to_numpy())
                )
            if effective:
                effective_tables.append(
                    _reach_effective(h, controller, problems, arrays.conditions)
                )
    return (
        validate_table("fixed_points", pd.concat(point_tables, ignore_index=True))
        if points else None,
        validate_table("effective_directions", pd.concat(effective_tables, ignore_index=True))
        if effective else None,
    )  # fmt: skip


def reach_fixed_points(
    models: dict,
    model_records: pd.DataFrame,
    states: EvaluationArrays,
    population: dict,
    devices: Devices | None = None,
) -> pd.DataFrame:
    """Fixed points of the instantaneous input along reaches (docs/science.md §5.3: fps_reach).

    Candidates are the trajectory's states within one step of h_t; all (reach,
    step) problems are solved together, grouped by input (see `_reach_steps`).
    Returns one row per point with its trial, direction, SISU, condition (the row of
    pca_tangling's projections), step, q, kind, stability and coordinates `h`.
    """
    return _reach_tables(models, model_records, states, population, effective=False,
                         devices=devices)[0]  # fmt: skip


def reach_effective_directions(
    models: dict, model_records: pd.DataFrame, states: EvaluationArrays, population: dict
) -> pd.DataFrame:
    """Readout-weighted effective direction of every unit along the fps_reach reaches.

    W dF/dh at (h_t, u_t): the force (N per unit activity) a nudge of each unit
    produces through the next step, rotated into the reach frame (parallel,
    lateral). One row per (reach, step, unit).
    """
    return _reach_tables(models, model_records, states, population, points=False)[1]


def _q_at(step, h: np.ndarray, u: np.ndarray) -> float:
    """q(h) = 1/2 |F(h, u) - h|^2 in float64."""
    with x64():
        r = np.asarray(step(jnp.asarray(h, jnp.float64), jnp.asarray(u, jnp.float64))) - h
    return float(0.5 * np.sum(r**2))


def reach_context_influence(points: pd.DataFrame) -> pd.DataFrame:
    """How SISU moves the instantaneous fixed point along the reach, step by step.

    For each model, reach (grid centre and direction) and step: the distance between the
    (lowest-q) point at each SISU and at the lowest SISU, and that point's spectral radius.
    """
    keys = ["hash", *(["centre_index"] if "centre_index" in points else []), "direction_index",
            "step"]  # fmt: skip
    best = points.sort_values("q").drop_duplicates([*keys, "sisu"])
    best = best.sort_values([*keys, "sisu"])  # by (hash, direction, step), SISU ascending
    starts = np.flatnonzero(~best.duplicated(keys).to_numpy())  # each group's lowest SISU
    first = np.repeat(starts, np.diff(np.append(starts, len(best))))
    h = np.stack(best["h"].to_numpy()).astype(float) if len(best) else np.zeros((0, 0))
    shift = (h - h[first])[:, None, :]
    table = pd.DataFrame({
        **{k: best[k].to_numpy() for k in (*keys, "sisu")},
        # |shift| as np.linalg.norm of each row (a dot product, as matmul computes it)
        "fp_shift": np.sqrt((shift @ shift.transpose(0, 2, 1))[:, 0, 0]),
        "max_abs_eigenvalue": best["max_abs_eigenvalue"].to_numpy(),
    })  # fmt: skip
    return validate_table("context", table)


def fps_reach(
    models: dict,
    model_records: pd.DataFrame,
    states: EvaluationArrays,
    population: dict,
    devices: Devices | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """fps_reach as one analysis: (points, context influence, effective directions), each
    model loaded and its reach problems built once."""
    points, effective = _reach_tables(models, model_records, states, population,
                                      devices=devices)  # fmt: skip
    return points, reach_context_influence(points), effective


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True)
class PopulationAnalysis:
    """A population analysis as a record: what it computes from, reads and writes.

    compute(**inputs, population=...) returns `outputs` in order; each output is the dataset
    `<analysis>_<name>` and the record's artifact `<name>.parquet` (tables) or folder
    `<name>` (the labelled arrays named in `arrays`). `reads`: the evaluations or analyses
    whose records it reads (their hashes are part of its own). `metrics_from`: the output
    whose rows give the record's metrics. `sharded`: compute spreads its work over the
    run's devices (`devices=`, from `resources.devices`; the numbers are those of one device).
    """

    compute: Callable[..., tuple]
    inputs: dict[str, str]  # compute's argument -> dataset
    reads: tuple[str, ...]
    outputs: tuple[str, ...]
    metrics_from: str
    arrays: tuple[str, ...] = ()
    sharded: bool = False  # compute takes devices= (the run's resources.devices)


_MODELS = {"models": "trained_models", "model_records": "model_records"}

POPULATION_ANALYSES = {
    "fps_steady": PopulationAnalysis(
        steady_fixed_points, {**_MODELS, "source_states": "feedback_perts_states"},
        ("feedback_perts",), ("points", "eigenvalues"), "points", sharded=True,
    ),
    "pca_tangling": PopulationAnalysis(
        pca_tangling, {"states": "plant_perts_states", "model_records": "model_records"},
        ("plant_perts",), ("pca", "tangling", "projections"), "tangling", ("projections",),
    ),
    "steady_state_dynamics": PopulationAnalysis(
        steady_state_dynamics, {**_MODELS, "points": "fps_steady_points"}, ("fps_steady",),
        ("hessian", "eigvec_stim", "responses", "context"), "context",
    ),
    "fps_reach": PopulationAnalysis(
        fps_reach, {**_MODELS, "states": "plant_perts_states"}, ("plant_perts",),
        ("points", "context", "effective_directions"), "points", sharded=True,
    ),
}  # fmt: skip


# Bumped when what a population analysis computes or stores changes, so old records are not
# reused. 2: pca_tangling fits on condition means (projections per condition); fps_reach reads
# the evaluation's kept single trials and its tables carry `condition`.
# 3: the hessian table carries `negative_bound` (Weyl) instead of a fixed round-off allowance,
# and the fixed-point search steps with optax's Adam (last bits differ from the hand-written one).
POPULATION_VERSION = 3


def analysis_hash(analysis: str, population: dict, model_hashes, read_hashes) -> str:
    """Hash of a population analysis: its name, its parameters (seeds included), every model,
    every record it reads (each of which covers that record's own parameters and seed) and
    the population code's version."""
    return hash_of(
        analysis, population[analysis], sorted(model_hashes), sorted(read_hashes),
        {"version": POPULATION_VERSION},
    )  # fmt: skip


def run_population_analysis(
    analysis: str, population: dict, sweep: pd.DataFrame, store: RecordStore,
    resources: dict | None = None, **inputs,
) -> tuple:  # fmt: skip
    """Read the analysis back from its record, or compute and record it.

    `inputs`: the compute's arguments, and `read_<name>` for each record it reads;
    resources: conf `resources` (its devices, for the analyses that spread over them; not
    part of the record's hash: the numbers do not depend on them).
    Returns its outputs followed by its record (hash, run id, status).
    """
    spec = POPULATION_ANALYSES[analysis]
    if spec.sharded:
        inputs["devices"] = ResourceBudget.from_conf(resources).devices
    reads = [inputs.pop(f"read_{name}") for name in spec.reads]
    model_hashes = sorted(inputs["model_records"]["hash"])
    h = analysis_hash(analysis, population, model_hashes, [r["hash"] for r in reads])
    labels = sweep.set_index("hash")["label"]
    metrics_index = spec.outputs.index(spec.metrics_from)
    params = {f"pop__{k}": v for k, v in flatten(population[analysis]).items()}
    params |= {f"pop__reads__{name}": r["hash"] for name, r in zip(spec.reads, reads, strict=True)}
    outcome = reuse_or_compute(
        store, hash=h, analysis=analysis,
        compute=lambda: spec.compute(**inputs, population=population),
        write=partial(_write_outputs, spec), read=partial(_read_outputs, spec),
        params=params, model_hashes=model_hashes,
        metrics=lambda value: _population_metrics(value[metrics_index], labels),
    )  # fmt: skip
    return (*outcome.value, outcome.info(analysis, model_hashes, kind="analysis"))


def _write_outputs(spec: PopulationAnalysis, value: tuple, folder: Path) -> list[Path]:
    paths = []
    for name, output in zip(spec.outputs, value, strict=True):
        if name in spec.arrays:
            paths.append(folder / name)
            save_labelled(paths[-1], output)
        else:
            paths.append(folder / f"{name}.parquet")
            output.to_parquet(paths[-1], index=False)
    return paths


def _read_outputs(spec: PopulationAnalysis, artifact) -> tuple:
    return tuple(
        load_labelled(artifact(name)) if name in spec.arrays
        else pd.read_parquet(artifact(f"{name}.parquet"))
        for name in spec.outputs
    )  # fmt: skip
