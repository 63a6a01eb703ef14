"""Figure nodes: select data, call an `ntdyn.plots` builder, return figures by name.

Figure names are a model hash (one figure per spread member), `<hash>__<variant>`,
or a plain name (figures across the sweep); `record_figures` turns the member's
hash into its swept hyperparameters, so figures can be queried by them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ntdyn import plots
from ntdyn.analysis import LabelledArrays, aligned_trajectories, rotate_to_direction
from ntdyn.analysis.measures import MEASURES
from ntdyn.analysis.stored import EvaluationArrays
from ntdyn.hyperparams import varying_columns
from ntdyn.plots.sampling import by_rank, evenly
from ntdyn.store import RecordStore, record_figure_set

ID_COLUMNS = ("hash", "label")


def _varying(sweep: pd.DataFrame) -> list[str]:
    return varying_columns(sweep.drop(columns=list(ID_COLUMNS)))


def _sweep_axis(sweep: pd.DataFrame) -> str:
    varying = _varying(sweep)
    return varying[0] if len(varying) == 1 else "label"


def _aligned(state: np.ndarray, control: np.ndarray, cond: pd.DataFrame) -> dict[str, np.ndarray]:
    """Aligned position, velocity and force of trials (or condition means), a row per `cond` row."""
    return aligned_trajectories(
        state, control, cond[["start_x", "start_y"]].to_numpy(), cond["direction"].to_numpy()
    )


def _aligned_position(state: np.ndarray, cond: pd.DataFrame) -> np.ndarray:
    """Position relative to the start, [parallel, lateral] to the trial's direction."""
    start = cond[["start_x", "start_y"]].to_numpy()
    return rotate_to_direction(state[..., :2] - start[:, None], cond["direction"].to_numpy())


def _labels(sweep: pd.DataFrame) -> pd.Series:
    return sweep.set_index("hash")["label"]


def loss_curves(training_history: pd.DataFrame, figures: dict) -> dict[str, go.Figure]:
    """Total training loss per spread member (mean and range over replicates)."""
    return {"total": plots.loss_curves_figure(training_history, smooth=figures["loss_smoothing"])}


def center_out(
    states: EvaluationArrays, sweep: pd.DataFrame, figures: dict
) -> dict[str, go.Figure]:
    """Hand paths of the best replicate, a panel per field amplitude, one figure per member.

    Drawn from the evaluation's kept single trials (`ModelArrays.trials`): repeat 0 of
    `n_plot_directions` evenly spaced directions (one SISU, the first, where there are
    several), so a figure holds at most that many paths per panel and centre, whatever the
    number of repeats.
    """
    out, labels = {}, _labels(sweep)
    for h, arrays in states.items():
        cond = arrays.trial_conditions
        n_dir = int(arrays.conditions["direction_index"].max()) + 1
        shown = min(figures["n_plot_directions"], n_dir)
        keep = np.unique(np.linspace(0, n_dir, shown, endpoint=False).astype(int))
        rows = cond["direction_index"].isin(keep).to_numpy() & (cond["repeat"] == 0).to_numpy()
        if "sisu" in cond and cond["sisu"].nunique() > 1:  # one SISU (the first) per panel set
            rows &= (cond["sisu"] == cond["sisu"].iloc[0]).to_numpy()
        out[h] = plots.center_out_figure(
            arrays.trials("state")[rows, :, :2], cond[rows].reset_index(drop=True), "pert_amp",
            f"Center-out reaches — {labels[h]} (best replicate)",
        )  # fmt: skip
    return out


def aligned_profiles(
    states: EvaluationArrays, sweep: pd.DataFrame, figures: dict
) -> dict[str, go.Figure]:
    """Aligned position, velocity and force (mean +- std) per member (best replicate).

    Mean and std are taken over the evaluation's kept sample of single trials
    (`ModelArrays.trials`; by default the first repeat of every condition, at most
    `keep.max_trials`): the spread is that of the sample (directions, centres and noise,
    one trial of each condition), not of every repeat. The figure holds only these
    summaries, so its size does not depend on the number of trials.
    Lines are grouped by `figures.aligned_profiles.group` (e.g. field amplitude:
    with and without the field); one figure per value of `split` if given.
    """
    spec, labels, out = figures["aligned_profiles"], _labels(sweep), {}
    for h, arrays in states.items():
        cond = arrays.trial_conditions
        al = _aligned(arrays.trials("state"), arrays.trials("control"), cond)
        dt = arrays.attrs["dt"]
        splits = [(None, np.ones(len(cond), bool))]
        if spec.get("split"):
            splits = [
                (v, (cond[spec["split"]] == v).to_numpy())
                for v in sorted(cond[spec["split"]].unique())
            ]
        for value, rows in splits:
            name = h if value is None else f"{h}__{spec['split']}_{value:g}"
            title = f"Aligned reach profiles — {labels[h]}"
            if value is not None:
                title += f", {spec['split']} = {value:g}"
            out[name] = plots.aligned_profiles_figure(
                {k: v[rows] for k, v in al.items()}, cond[rows].reset_index(drop=True),
                spec["group"], dt, title,
            )  # fmt: skip
    return out


def measure_distributions(measures: pd.DataFrame, sweep: pd.DataFrame) -> dict[str, go.Figure]:
    """Each behaviour measure vs the swept hyperparameter, coloured by field amplitude."""
    x, selected = _sweep_axis(sweep), measures[measures["selected"]]
    return {
        m: plots.measure_distributions_figure(
            selected, m, x, "pert_amp", f"{m.replace('_', ' ')} vs {x} (best replicates)"
        )
        for m in MEASURES
    }


def measures_vs_sisu(measures: pd.DataFrame, sweep: pd.DataFrame) -> dict[str, go.Figure]:
    """Each measure vs evaluation SISU, coloured by training std, a column per method; per field."""
    selected = measures[measures["selected"]]
    varying = _varying(sweep)
    colour_by = "train__pert__std" if "train__pert__std" in varying else _sweep_axis(sweep)
    facet = "train__method" if "train__method" in varying else None
    out = {}
    for amp in sorted(selected["pert_amp"].unique()):
        rows = selected[selected["pert_amp"] == amp]
        for m in MEASURES:
            out[f"{m}__pert_amp_{amp:g}"] = plots.measures_vs_sisu_figure(
                rows, m, colour_by, facet, f"{m.replace('_', ' ')} vs SISU, field {amp:g}"
            )
    return out


def feedback_responses(states: EvaluationArrays, sweep: pd.DataFrame) -> dict[str, go.Figure]:
    """Position along the impulse direction after feedback impulses, per member.

    Drawn from the condition means (`ModelArrays.means`, best replicate): the mean over the
    conditions of a (channel, amplitude) is the mean over all its trials, since every
    condition has the same number of repeats (and the alignment is linear per condition).
    """
    out, labels = {}, _labels(sweep)
    for h, arrays in states.items():
        cond = arrays.mean_conditions
        out[h] = plots.feedback_response_figure(
            _aligned_position(arrays.means("state"), cond), cond, arrays.attrs["dt"],
            f"Feedback impulse responses — {labels[h]}",
        )  # fmt: skip
    return out


def sisu_pert(
    states: EvaluationArrays, sweep: pd.DataFrame, evaluation: dict
) -> dict[str, go.Figure]:
    """The four conditions (+- curl, +- SISU step) on one figure, per member (training std).

    Mean +- std over the evaluation's kept sample of single trials (`ModelArrays.trials`,
    best replicate; by default the first repeat of every condition): the spread is that of
    the sample (the centres and directions of a condition, one trial each), not of every
    repeat. The figure holds only these summaries, whatever the number of trials.
    """
    out, labels, step_at = {}, _labels(sweep), evaluation["sisu_pert"]["step_at"]
    for h, arrays in states.items():
        cond = arrays.trial_conditions
        out[h] = plots.sisu_pert_figure(
            _aligned_position(arrays.trials("state"), cond), cond, arrays.attrs["dt"], step_at,
            f"SISU perturbation — {labels[h]}",
        )  # fmt: skip
    return out


def unit_response_profiles(
    states: EvaluationArrays, sweep: pd.DataFrame, coefficients: pd.DataFrame,
    evaluation: dict, figures: dict,
) -> dict[str, go.Figure]:  # fmt: skip
    """Force responses of the units whose response depends most on context, per member.

    Drawn from the condition means of the control force (`ModelArrays.means`, best
    replicate): a mean of condition means is the mean over their trials, every condition
    having the same number of repeats.
    """
    spec, labels, out = evaluation["unit_perts"], _labels(sweep), {}
    window = (spec["stim_start"], spec["stim_start"] + spec["stim_steps"])
    amp = coefficients[coefficients["response"] == "amplitude"]
    for h, arrays in states.items():
        c = amp[amp["hash"] == h].copy()
        c["context_effect"] = c["coef_curl_amp"].abs() + c["coef_sisu"].abs()
        units = c.nlargest(figures["n_profile_units"], "context_effect")["unit"].tolist()
        out[h] = plots.unit_response_profiles_figure(
            arrays.means("control"), arrays.mean_conditions, sorted(units), arrays.attrs["dt"],
            window, f"Unit stimulation responses — {labels[h]}",
        )  # fmt: skip
    return out


def regression_scatter(coefficients: pd.DataFrame, sweep: pd.DataFrame) -> dict[str, go.Figure]:
    """Per member: each unit's response-amplitude coefficients on curl vs on SISU."""
    out, labels = {}, _labels(sweep)
    amp = coefficients[coefficients["response"] == "amplitude"]
    for h, c in amp.groupby("hash", sort=False):
        out[h] = plots.regression_scatter_figure(
            c, "coef_curl_amp", "coef_sisu",
            f"Unit force-response amplitude regressed on context — {labels[h]}", colour_by="r2",
        )  # fmt: skip
    return out


def ablation_ranking(
    effects: pd.DataFrame, sweep: pd.DataFrame, figures: dict
) -> dict[str, go.Figure]:
    """Per member and measure: units ranked by how much silencing them changes the measure."""
    out, labels, top = {}, _labels(sweep), figures["n_ablation_units"]
    for h, e in effects.groupby("hash", sort=False):
        for m in figures["ablation_measures"]:
            out[f"{h}__{m}"] = plots.ablation_ranking_figure(
                e, m, top, f"Unit ablation: {m.replace('_', ' ')} — {labels[h]}"
            )
    return out


# The most eigenvalues (markers) one fps_eigenvalues figure draws: float32 coordinates, about
# 0.4 MB of JSON, however many fixed points the searches found (up to SISU values x centres x
# candidates per model: 7 x 25 x 1024 at research scale; a few thousand points of 100
# eigenvalues each made the figure 8 MB).
MAX_EIGENVALUES = 30_000


def fps_eigenvalues(points: pd.DataFrame, eigenvalues: pd.DataFrame, sweep: pd.DataFrame):
    """Per member: Jacobian eigenvalues of its steady-state fixed points, one trace per SISU.

    Every eigenvalue of a bounded sample of each SISU's fixed points (all centres together):
    at most MAX_EIGENVALUES // (SISU values x eigenvalues per point) points per SISU, at
    evenly spaced ranks of their spectral radius (max |lambda|; the most stable and the
    least stable point always among them), so the sample spans the SISU's whole range of
    stability. The legend says how many of how many points each trace draws.
    """
    out, labels = {}, _labels(sweep)
    ids = ["sisu", "centre_index", "point"]
    fixed = points[points["kind"] == "fixed"][["hash", *ids]]
    spectra = eigenvalues.merge(fixed, on=["hash", *ids])
    for h, e in spectra.groupby("hash", sort=False):
        n_modes = int(e.groupby(ids, dropna=False).size().max())
        per_sisu = max(MAX_EIGENVALUES // (e["sisu"].nunique(dropna=False) * n_modes), 1)
        by_sisu = {}
        for s, g in e.groupby("sisu", dropna=False):
            radius = g.groupby(["centre_index", "point"])["abs"].max()
            chosen = radius.index[by_rank(radius.to_numpy(), per_sisu)]
            drawn = g[pd.MultiIndex.from_frame(g[["centre_index", "point"]]).isin(chosen)]
            name = "SISU —" if np.isnan(s) else f"SISU {s:g}"
            if len(chosen) < len(radius):
                name += f" ({len(chosen)} of {len(radius)} points)"
            by_sisu[name] = (drawn["real"] + 1j * drawn["imag"]).to_numpy()
        out[h] = plots.eigenvalue_polar_figure(
            by_sisu, f"Steady-state fixed points: Jacobian eigenvalues — {labels[h]}"
        )
    return out


def pca_scree(pca: pd.DataFrame, sweep: pd.DataFrame) -> dict[str, go.Figure]:
    """Per member: explained variance of the hidden-state PCs (bars) and its cumulative sum."""
    labels = _labels(sweep)
    return {
        h: plots.scree_figure(g["explained_variance_ratio"].to_numpy(), f"PCA — {labels[h]}")
        for h, g in pca.groupby("hash", sort=False)
    }


# The most 3-D trajectory points (float32 coordinates, ~16 bytes each in JSON), lines (~0.3 kB
# each) and fixed points one pc_trajectories figure draws, so that a figure of condition
# means stays under 2 MB however many conditions an evaluation has and however many fixed
# points its searches found: 1.4 MB at conf/full shapes (benchmarks/figure_sizes.py), where
# 150 000 points and 1000 lines made 3.5 MB; 500 3-D lines are more than the eye separates.
MAX_TRAJECTORY_POINTS = 60_000
MAX_TRAJECTORIES = 500
MAX_FIXED_POINTS = 2000


def pc_trajectories(
    projections: dict[str, LabelledArrays], points: pd.DataFrame, sweep: pd.DataFrame,
    figures: dict,
) -> dict[str, go.Figure]:  # fmt: skip
    """Per member: repeat-averaged reaches in the top 3 PCs, with the steady-state fixed points.

    The trajectories are pca_tangling's projected condition means (rows of
    `attrs["conditions"]`): one line per condition whatever the number of trials; beyond
    MAX_TRAJECTORIES lines or MAX_TRAJECTORY_POINTS points, an evenly spaced subset of the
    conditions. The fixed points are fps_steady's (every SISU and centre); beyond
    MAX_FIXED_POINTS, an evenly spaced subset of its rows (in SISU, centre, point order, so
    every search is represented). The title says how many of how many of each are drawn.
    """
    out, labels, colour_by = {}, _labels(sweep), figures["pc_colour_by"]
    for h, arrays in projections.items():
        table = pd.DataFrame(arrays.attrs["conditions"])
        n_cond, n_steps = np.shape(arrays["projected"])[:2]
        rows = evenly(
            n_cond, min(MAX_TRAJECTORIES, max(MAX_TRAJECTORY_POINTS // max(n_steps, 1), 1))
        )
        fp = points[(points["hash"] == h) & (points["kind"] == "fixed")]
        fp = fp.sort_values(["sisu", "centre_index", "point"], kind="stable")
        fp_rows = evenly(len(fp), MAX_FIXED_POINTS)
        shown = []
        if len(rows) < n_cond:
            shown.append(f"{len(rows)} of {n_cond} conditions")
        if len(fp_rows) < len(fp):
            shown.append(f"{len(fp_rows)} of {len(fp)} fixed points")
        fp = fp.iloc[fp_rows]
        title = f"Hidden-state trajectories — {labels[h]}"
        if shown:
            title += f" ({', '.join(shown)})"
        fp_pc = _in_pcs(arrays, np.stack(fp["h"].to_numpy())) if len(fp) else None
        out[h] = plots.pc_trajectories_figure(
            np.asarray(arrays["projected"])[rows, :, :3], table.iloc[rows].reset_index(drop=True),
            colour_by, title, fixed_points=fp_pc,
            fp_stable=None if fp_pc is None else fp["stable"].to_numpy(),
        )  # fmt: skip
    return out


def _in_pcs(projection: LabelledArrays, hidden: np.ndarray, k: int = 3) -> np.ndarray:
    """Hidden states (..., unit) in the top `k` PCs of a pca_tangling projection."""
    components = np.asarray(projection["components"])[:k]
    return (hidden - np.asarray(projection["mean"])) @ components.T


def fps_reach_pc(
    projections: dict[str, LabelledArrays], states: EvaluationArrays, points: pd.DataFrame,
    sweep: pd.DataFrame,
) -> dict[str, go.Figure]:  # fmt: skip
    """Per member: the analysed reaches in the top 3 PCs with their instantaneous fixed points.

    The reaches are the single trials fps_reach analysed (one SISU, the lowest: the 3-D plot
    stays readable), read from plant_perts' kept sample (best replicate) and projected on
    pca_tangling's components: the trajectories the fixed points were found along.
    """
    out, labels = {}, _labels(sweep)
    for h, p in points.groupby("hash", sort=False):
        p = p[p["sisu"] == p["sisu"].min()]
        arrays = states[h]
        trials = sorted(p["trial"].unique())
        kept = pd.Index(arrays.trial_conditions["trial"])
        rows = kept.get_indexer(trials)
        if (rows < 0).any():
            raise ValueError(
                f"fps_reach_pc: trials {np.asarray(trials)[rows < 0].tolist()[:10]} of model "
                f"{h} are not among the single trials {arrays.attrs['analysis']} kept"
            )
        proj = _in_pcs(projections[h], arrays.trials("hidden")[rows])
        fixed = p[p["kind"] == "fixed"]
        fp_pc = _in_pcs(projections[h], np.stack(fixed["h"].to_numpy())) if len(fixed) else None
        out[h] = plots.pc_trajectories_figure(
            proj, arrays.trial_conditions.iloc[rows].reset_index(drop=True), "direction_index",
            f"Fixed points along reaches — {labels[h]}", fixed_points=fp_pc,
            fp_stable=None if fp_pc is None else fixed["stable"].to_numpy(),
        )  # fmt: skip
    return out


def reach_context(context: pd.DataFrame, sweep: pd.DataFrame) -> dict[str, go.Figure]:
    """Per member: how SISU moves the instantaneous fixed point along the reach."""
    labels = _labels(sweep)
    return {
        h: plots.reach_context_figure(g, f"SISU and the fixed points along reaches — {labels[h]}")
        for h, g in context.groupby("hash", sort=False)
    }


def effective_directions(directions: pd.DataFrame, sweep: pd.DataFrame) -> dict[str, go.Figure]:
    """Per member: where each unit pushes the hand over a reach, per SISU."""
    labels = _labels(sweep)
    return {
        h: plots.effective_directions_figure(g, f"Units' effective directions — {labels[h]}")
        for h, g in directions.groupby("hash", sort=False)
    }


def tangling_distributions(tangling: pd.DataFrame, sweep: pd.DataFrame) -> dict[str, go.Figure]:
    """Tangling Q over conditions and steps, vs the swept hyperparameter, per field amplitude."""
    data = tangling.join(sweep.set_index("hash")[["label"]], on="hash")
    axis = _sweep_axis(sweep)
    if axis != "label":
        data = data.join(sweep.set_index("hash")[[axis]], on="hash")
    colour = "sisu" if "sisu" in data and data["sisu"].nunique() > 1 else "pert_amp"
    return {"Q": plots.tangling_figure(data, axis, colour, f"Tangling (top PCs) vs {axis}")}


def dose_response(measures: pd.DataFrame, sweep: pd.DataFrame, figures: dict):
    """Per member: behaviour vs TMS pulse and tDCS bias amplitude (best replicate)."""
    out, labels = {}, _labels(sweep)
    for h, m in measures[measures["selected"]].groupby("hash", sort=False):
        out[h] = plots.dose_response_figure(
            m, figures["dose_measures"], f"TMS / tDCS analogues — {labels[h]}"
        )
    return out


def hessian_spectra(hessian: pd.DataFrame, sweep: pd.DataFrame) -> dict[str, go.Figure]:
    """Per member: Hessian-of-q spectra at its steady-state point, a line per SISU."""
    labels = _labels(sweep)
    return {
        h: plots.hessian_spectra_figure(g, f"Slow landscape at steady state — {labels[h]}")
        for h, g in hessian.groupby("hash", sort=False)
    }


def eigvec_responses(
    responses: pd.DataFrame, modes: pd.DataFrame, sweep: pd.DataFrame
) -> dict[str, go.Figure]:
    """Per member and SISU: force responses to kicks along the top Jacobian eigenvectors."""
    out, labels = {}, _labels(sweep)
    for (h, s), g in responses.groupby(["hash", "sisu"], sort=False, dropna=False):
        m = modes[(modes["hash"] == h) & ((modes["sisu"] == s) | modes["sisu"].isna())]
        name = h if np.isnan(s) else f"{h}__sisu_{s:g}"
        out[name] = plots.eigvec_responses_figure(
            g,
            m,
            f"Eigenvector stimulation — {labels[h]}" + ("" if np.isnan(s) else f", SISU {s:g}"),
        )
    return out


def context_influence(context: pd.DataFrame, sweep: pd.DataFrame) -> dict[str, go.Figure]:
    """Across members: fixed-point shift, spectral radius and effective gain vs SISU."""
    data = context.join(_labels(sweep), on="hash")
    return {"all": plots.context_influence_figure(data, "label", "How SISU moves the dynamics")}


def record_figures(
    kind: str, options: tuple[str, ...], has_evaluation: bool, figures: dict,
    sweep: pd.DataFrame, figure_params: dict, store: RecordStore, *records,
) -> pd.DataFrame:  # fmt: skip
    """Record each figure of one kind in MLflow, with everything that determines it.

    `records`: the record the figures are drawn from first (when `has_evaluation`), then
    the other records they read; a record is an evaluation's or analysis' `*_record` dict
    or the `model_records` table (loss curves: every model drawn). A figure named after a
    model (`<hash>` or `<hash>__<variant>`) carries that model's hash and swept
    hyperparameters as parameters; the figure options it uses (`options` of
    `params:figures`) are parameters `fig__<option>`.
    """
    hp = sweep.set_index("hash")[_varying(sweep)]
    hashes = [_record_hashes(r) for r in records]
    eval_hash = hashes[0][0] if has_evaluation else None
    used = {f"fig__{k}": figure_params[k] for k in options}

    def params_of(name: str) -> dict:
        head, _, variant = name.partition("__")
        if head in hp.index:
            params = {"model_hash": head, **hp.loc[head].to_dict()}
        else:
            params, variant = {}, name
        if variant:
            params["variant"] = variant
        return params | used

    return record_figure_set(
        store, kind, figures, params_of=params_of, evaluation_hash=eval_hash,
        sources=sorted({h for hs in hashes for h in hs}), version=plots.figure_version(kind),
    )  # fmt: skip


def _record_hashes(record: dict | pd.DataFrame) -> list[str]:
    """The hash(es) of a record dict, or of every model in a `model_records` table."""
    if isinstance(record, pd.DataFrame):
        return sorted(record["hash"].astype(str))
    return [str(record["hash"])]
