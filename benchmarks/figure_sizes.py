"""The file size of every figure kind at research scale, from synthetic inputs (issue 13).

Builds each figure kind the pipelines make (analysis parts 1 and 2, task_vs_data,
training_dynamics) from random inputs of the shapes a `kedro run --env full` gives it,
read from conf/base merged with conf/full: spread members, evaluation grids, repeats,
directions, SISU values, steps, hidden units, fixed-point candidates, trials and neurons.
No model is trained: the size of a figure depends on the shapes of what it draws, not on
the values. Where the pipeline's node selects what a figure draws from tables or arrays
(fps_eigenvalues, pc_trajectories, task_vs_data's figures) the node itself is called;
otherwise the builder is given what the node passes it. Each kind's size is that of its
largest figure (one member) as the recording path writes it: `figure.json`
(`go.Figure.to_json`, also what the figures folder holds) and `figure.html`
(`store.assets.figure_html`, plotly.js loaded separately); the larger of the two is
reported, in MB (1e6 bytes):

    PYTHONPATH=src python benchmarks/figure_sizes.py [--env full] [--fixed-points 3000]

`--fixed-points`: steady-state fixed points of one model (fps_steady keeps one row per
distinct point: up to sisu x centres x candidates, 7 x 25 x 1024 at research scale; a
trained network has a few thousand). `--td-records`: records of the training-dynamics trace
(conf: n_steps / record_every); `--td-long-records`: a long trace measured as well
(kinds `td_<figure>@<records>`). Writes benchmarks/results/figure_sizes_<machine>.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from _results import add_out_option, save
from ntdyn import plots
from ntdyn.analysis import LabelledArrays
from ntdyn.analysis.measures import MEASURES
from ntdyn.config_loader import ProjectConfigLoader
from ntdyn.hyperparams.spreads import expand_spread
from ntdyn.pipelines.figures import nodes as fig_nodes
from ntdyn.pipelines.task_vs_data import nodes as tvd_nodes
from ntdyn.settings import CONFIG_LOADER_ARGS
from ntdyn.store.assets import figure_html

REPO = Path(__file__).resolve().parents[1]
MB = 1e6
RNG = np.random.default_rng(0)


def conf_parameters(env: str | None) -> dict:
    """conf/base merged with conf/<env>, as `kedro run --env <env>` reads them."""
    loader = ProjectConfigLoader(conf_source=str(REPO / "conf"), env=env, **CONFIG_LOADER_ARGS)
    return loader["parameters"]


def file_bytes(fig: go.Figure) -> dict[str, int]:
    """Bytes of the figure's two files as the recording path writes them."""
    html = figure_html(fig, "0" * 32, "3.0.0")
    return {"json": len(fig.to_json().encode()), "html": len(html.encode())}


# ----------------------------------------------------------------------------- shapes


def n_members(experiment: dict) -> int:
    base = experiment["training"]["hyperparams"]
    return len(expand_spread(base, experiment["training"].get("spread")))


def hidden_size(params: dict, experiment: str) -> int:
    return int(params[experiment]["training"]["hyperparams"]["model"]["hidden_size"])


def n_centres(grid_n: int) -> int:
    return int(grid_n) ** 2


def reach_conditions(spec: dict, amplitudes: list[float], sisu: list[float]) -> pd.DataFrame:
    """Condition table of a reach evaluation: centre x direction x amplitude x SISU."""
    n_dir, n_c = int(spec["n_directions"]), n_centres(spec["grid_n"])
    rows = [
        (c, d, a, s)
        for c in range(n_c) for d in range(n_dir) for a in amplitudes for s in sisu
    ]  # fmt: skip
    t = pd.DataFrame(rows, columns=["centre_index", "direction_index", "pert_amp", "sisu"])
    t["direction"] = 2 * np.pi * t["direction_index"] / n_dir
    t["start_x"], t["start_y"] = RNG.uniform(-1, 1, (2, len(t)))
    t["goal_x"] = t["start_x"] + 0.5 * np.cos(t["direction"])
    t["goal_y"] = t["start_y"] + 0.5 * np.sin(t["direction"])
    t["repeat"] = 0
    t["condition"] = np.arange(len(t))
    return t


def kept_trials(n_conditions: int, n_repeats: int, keep: dict) -> int:
    """Single trials an evaluation keeps per model (`evaluation.keep`)."""
    repeats = n_repeats if keep.get("repeats") is None else min(keep["repeats"], n_repeats)
    n = n_conditions * repeats
    return n if keep.get("max_trials") is None else min(n, int(keep["max_trials"]))


def keep_of(evaluation: dict, name: str) -> dict:
    return {**evaluation["keep"], **evaluation[name].get("keep", {})}


def amplitudes_of(spec: dict) -> list[float]:
    amps = spec["amplitudes"]
    return [float(a) for a in (amps.get("curl") or next(iter(amps.values())))]


# ----------------------------------------------------------------------------- part 1 / 2


def loss_curves(p: dict, exp: str) -> go.Figure:
    e = p[exp]
    hp = e["training"]["hyperparams"]["train"]
    n_b, n_rep = int(hp["n_batches"]), int(hp["n_replicates"])
    history = pd.DataFrame({
        "label": np.repeat([f"member {i}" for i in range(n_members(e))], n_rep * n_b),
        "replicate": np.tile(np.repeat(np.arange(n_rep), n_b), n_members(e)),
        "step": np.tile(np.arange(n_b), n_members(e) * n_rep), "term": "total",
    })  # fmt: skip
    history["value"] = RNG.uniform(0.1, 2.0, len(history))
    return fig_nodes.loss_curves(history, e["figures"])["total"]


def _plant(p: dict, exp: str) -> tuple[dict, pd.DataFrame]:
    ev = p[exp]["evaluation"]
    spec = ev["plant_perts"]
    return spec, reach_conditions(spec, amplitudes_of(spec), [float(s) for s in spec["sisu"]])


def center_out(p: dict, exp: str) -> go.Figure:
    spec, cond = _plant(p, exp)
    n_dir = int(spec["n_directions"])
    shown = min(p[exp]["figures"]["n_plot_directions"], n_dir)
    keep = np.unique(np.linspace(0, n_dir, shown, endpoint=False).astype(int))
    rows = cond["direction_index"].isin(keep) & (cond["sisu"] == cond["sisu"].iloc[0])
    sel = cond[rows].reset_index(drop=True)
    position = RNG.normal(size=(len(sel), int(spec["n_steps"]), 2))
    return plots.center_out_figure(position, sel, "pert_amp", "center-out")


def aligned_profiles(p: dict, exp: str) -> go.Figure:
    spec, cond = _plant(p, exp)
    ev, figs = p[exp]["evaluation"], p[exp]["figures"]
    n = kept_trials(len(cond), int(spec["n_repeats"]), keep_of(ev, "plant_perts"))
    cond = cond.iloc[:n]
    split = figs["aligned_profiles"].get("split")
    if split:  # the largest of the figures per value of `split`
        cond = cond[cond[split] == cond[split].iloc[0]].reset_index(drop=True)
    k = int(spec["n_steps"])
    aligned = {v: RNG.normal(size=(len(cond), k, 2)) for v in ("position", "velocity", "force")}
    return plots.aligned_profiles_figure(aligned, cond, figs["aligned_profiles"]["group"], 0.01,
                                         "aligned")  # fmt: skip


def _measures(p: dict, exp: str) -> pd.DataFrame:
    """Per-trial behaviour measures of every member's selected replicate (plant_perts)."""
    spec, cond = _plant(p, exp)
    reps = int(spec["n_repeats"])
    cond = cond.loc[np.repeat(cond.index, reps)].reset_index(drop=True)
    e = p[exp]
    members = expand_spread(e["training"]["hyperparams"], e["training"].get("spread"))
    tables = []
    for i, m in enumerate(members):
        t = cond.assign(hash=f"h{i}", selected=True, label=f"member {i}",
                        train__pert__std=m.get("train__pert__std", 0.0),
                        train__method=m.get("train__method", "fixed"))  # fmt: skip
        for name in MEASURES:
            t[name] = RNG.normal(size=len(t))
        tables.append(t)
    return pd.concat(tables, ignore_index=True)


def measure_distributions(p: dict, exp: str) -> go.Figure:
    m = _measures(p, exp)
    return plots.measure_distributions_figure(m, MEASURES[0], "train__pert__std", "pert_amp", "m")


def measures_vs_sisu(p: dict, exp: str) -> go.Figure:
    m = _measures(p, exp)
    return plots.measures_vs_sisu_figure(m, MEASURES[0], "train__pert__std", "train__method", "m")


def feedback_responses(p: dict, exp: str) -> go.Figure:
    spec = p[exp]["evaluation"]["feedback_perts"]
    rows = [
        (ch, a, s, c, d)
        for ch, amps in spec["amplitudes"].items() for a in amps for s in spec["sisu"]
        for c in range(n_centres(spec["grid_n"])) for d in range(int(spec["n_directions"]))
    ]  # fmt: skip
    cond = pd.DataFrame(rows, columns=["channel", "impulse_amp", "sisu", "centre", "direction"])
    pos = RNG.normal(size=(len(cond), int(spec["n_steps"]), 2))
    return plots.feedback_response_figure(pos, cond, 0.01, "feedback")


def sisu_pert(p: dict, exp: str) -> go.Figure:
    spec = p[exp]["evaluation"]["sisu_pert"]
    rows = [
        (task, c, spec["sisu_start"], e)
        for task in spec["tasks"] for c in spec["curl_amps"] for e in spec["sisu_ends"]
        for _ in range(n_centres(spec["grid_n"]) * int(spec["n_directions"]))
    ]  # fmt: skip
    cond = pd.DataFrame(rows, columns=["task", "curl_amp", "sisu_start", "sisu_end"])
    n = kept_trials(len(cond), int(spec["n_repeats"]), keep_of(p[exp]["evaluation"], "sisu_pert"))
    cond = pd.concat([cond] * -(-n // len(cond)), ignore_index=True).iloc[:n]
    pos = RNG.normal(size=(len(cond), int(spec["n_steps"]), 2))
    return plots.sisu_pert_figure(pos, cond, 0.01, int(spec["step_at"]), "sisu pert")


def unit_response_profiles(p: dict, exp: str) -> go.Figure:
    spec = p[exp]["evaluation"]["unit_perts"]
    units = [-1, *range(hidden_size(p, exp))]
    rows = [
        (u, a, c, s)
        for u in units for a in spec["stim_amps"] for c in spec["curl_amps"] for s in spec["sisu"]
        for _ in range(n_centres(spec["grid_n"]))
    ]  # fmt: skip
    cond = pd.DataFrame(rows, columns=["unit", "stim_amp", "curl_amp", "sisu"])
    force = RNG.normal(size=(len(cond), int(spec["n_steps"]), 2))
    top = list(range(int(p[exp]["figures"]["n_profile_units"])))
    window = (spec["stim_start"], spec["stim_start"] + spec["stim_steps"])
    return plots.unit_response_profiles_figure(force, cond, top, 0.01, window, "units")


def _coefficients(p: dict, exp: str) -> pd.DataFrame:
    n = hidden_size(p, exp)
    return pd.DataFrame({"unit": np.arange(n), "coef_curl_amp": RNG.normal(size=n),
                         "coef_sisu": RNG.normal(size=n), "r2": RNG.uniform(size=n)})  # fmt: skip


def regression_scatter(p: dict, exp: str) -> go.Figure:
    c = _coefficients(p, exp)
    return plots.regression_scatter_figure(c, "coef_curl_amp", "coef_sisu", "r", colour_by="r2")


def ablation_ranking(p: dict, exp: str) -> go.Figure:
    figs, n = p[exp]["figures"], hidden_size(p, exp)
    effects = pd.DataFrame(
        {
            "unit": np.arange(n),
            "measure": figs["ablation_measures"][0],
            "delta": RNG.normal(size=n),
            "delta_std": RNG.uniform(size=n),
        }
    )
    return plots.ablation_ranking_figure(effects, figs["ablation_measures"][0],
                                         int(figs["n_ablation_units"]), "ablation")  # fmt: skip


def _steady_points(p: dict, exp: str, n_points: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """fps_steady's points and eigenvalues of one model: `n_points` fixed points spread over
    its SISU values and centres, each with H eigenvalues."""
    spec = p[exp]["population"]["fps_steady"]
    h = hidden_size(p, exp)
    searches = [(float(s), c) for s in spec["sisu"] for c in range(n_centres(spec["grid_n"]))]
    per = np.diff(np.linspace(0, n_points, len(searches) + 1).astype(int))
    rows = [(s, c, i) for (s, c), k in zip(searches, per, strict=True) for i in range(k)]
    points = pd.DataFrame(rows, columns=["sisu", "centre_index", "point"]).assign(
        hash="h0", kind="fixed", stable=RNG.uniform(size=len(rows)) < 0.5
    )
    points["h"] = list(RNG.normal(size=(len(points), h)))
    lam = RNG.uniform(0, 1, (len(points), h)) * np.exp(
        2j * np.pi * RNG.uniform(size=(len(points), h))
    )
    eig = pd.DataFrame({
        "hash": "h0", "sisu": np.repeat(points["sisu"], h),
        "point": np.repeat(points["point"], h),
        "centre_index": np.repeat(points["centre_index"], h),
        "mode": np.tile(np.arange(h), len(points)),
        "real": lam.real.ravel(), "imag": lam.imag.ravel(), "abs": np.abs(lam).ravel(),
    })  # fmt: skip
    return points, eig


SWEEP = pd.DataFrame({"hash": ["h0"], "label": ["member 0"], "x": [0.0]})


def fps_eigenvalues(p: dict, exp: str, n_points: int) -> go.Figure:
    points, eig = _steady_points(p, exp, n_points)
    return fig_nodes.fps_eigenvalues(points, eig, SWEEP)["h0"]


def _projections(p: dict, exp: str) -> dict[str, LabelledArrays]:
    _, cond = _plant(p, exp)
    spec, h = p[exp]["evaluation"]["plant_perts"], hidden_size(p, exp)
    k = int(p[exp]["population"]["pca_tangling"]["n_components"])
    projected = RNG.normal(size=(len(cond), int(spec["n_steps"]), k))
    return {"h0": LabelledArrays(
        {"projected": projected, "components": RNG.normal(size=(k, h)), "mean": np.zeros(h)},
        {"projected": ("condition", "time", "pc"), "components": ("pc", "unit"), "mean": ("unit",)},
        {"conditions": {c: cond[c].tolist() for c in cond.columns}},
    )}  # fmt: skip


def pc_trajectories(p: dict, exp: str, n_points: int) -> go.Figure:
    points, _ = _steady_points(p, exp, n_points)
    return fig_nodes.pc_trajectories(_projections(p, exp), points, SWEEP, p[exp]["figures"])["h0"]


def _reaches(p: dict, exp: str) -> tuple[dict, int, int]:
    """fps_reach: (spec, reaches at the lowest SISU, steps per reach)."""
    spec = p[exp]["population"]["fps_reach"]
    grid = p[exp]["evaluation"]["plant_perts"]["grid_n"]
    n_reach = int(spec["n_directions"]) * n_centres(grid)
    return spec, n_reach, int(spec["stop"]) - int(spec["start"])


def fps_reach_pc(p: dict, exp: str) -> go.Figure:
    spec, n_reach, n_steps = _reaches(p, exp)
    k = int(p[exp]["evaluation"]["plant_perts"]["n_steps"])
    cond = pd.DataFrame({"direction_index": np.arange(n_reach) % int(spec["n_directions"])})
    n_fp = n_reach * n_steps * 3  # a point per candidate (h_{t-1}, h_t, h_{t+1}) at most
    return plots.pc_trajectories_figure(
        RNG.normal(size=(n_reach, k, 3)), cond, "direction_index", "fps reach",
        fixed_points=RNG.normal(size=(n_fp, 3)), fp_stable=RNG.uniform(size=n_fp) < 0.5,
    )  # fmt: skip


def reach_context(p: dict, exp: str) -> go.Figure:
    _, n_reach, n_steps = _reaches(p, exp)
    sisu = p[exp]["evaluation"]["plant_perts"]["sisu"]
    rows = [(s, t) for s in sisu for _ in range(n_reach) for t in range(n_steps)]
    t = pd.DataFrame(rows, columns=["sisu", "step"])
    t["fp_shift"], t["max_abs_eigenvalue"] = RNG.uniform(size=(2, len(t)))
    return plots.reach_context_figure(t, "reach context")


def effective_directions(p: dict, exp: str) -> go.Figure:
    _, n_reach, n_steps = _reaches(p, exp)
    sisu, h = p[exp]["evaluation"]["plant_perts"]["sisu"], hidden_size(p, exp)
    n = len(sisu) * n_reach * n_steps
    t = pd.DataFrame({"sisu": np.repeat(np.repeat(sisu, n_reach * n_steps), h),
                      "unit": np.tile(np.arange(h), n)})  # fmt: skip
    t["parallel"], t["lateral"] = RNG.normal(size=(2, len(t)))
    return plots.effective_directions_figure(t, "effective directions")


def tangling(p: dict, exp: str) -> go.Figure:
    _, cond = _plant(p, exp)
    k = int(p[exp]["evaluation"]["plant_perts"]["n_steps"])
    t = cond.loc[np.repeat(cond.index, k)].reset_index(drop=True)
    frames = [t.assign(hash=f"h{i}", x=float(i), Q=RNG.exponential(size=len(t)))
              for i in range(n_members(p[exp]))]  # fmt: skip
    data = pd.concat(frames, ignore_index=True)
    colour = "sisu" if data["sisu"].nunique() > 1 else "pert_amp"
    return plots.tangling_figure(data, "x", colour, "tangling")


def dose_response(p: dict, exp: str) -> go.Figure:
    spec, figs = p[exp]["evaluation"]["tms_tdcs"], p[exp]["figures"]
    n_trials = n_centres(spec["grid_n"]) * int(spec["n_directions"]) * int(spec["n_repeats"])
    rows = [(pr, a) for pr, amps in (("tms", spec["tms_amps"]), ("tdcs", spec["tdcs_amps"]))
            for a in amps for _ in range(n_trials)]  # fmt: skip
    m = pd.DataFrame(rows, columns=["protocol", "amplitude"])
    for name in figs["dose_measures"]:
        m[name] = RNG.normal(size=len(m))
    return plots.dose_response_figure(m, figs["dose_measures"], "dose")


def hessian_spectra(p: dict, exp: str) -> go.Figure:
    sisu, h = p[exp]["population"]["fps_steady"]["sisu"], hidden_size(p, exp)
    t = pd.DataFrame({"sisu": np.repeat(sisu, h), "mode": np.tile(np.arange(h), len(sisu)),
                      "eigenvalue": RNG.uniform(size=h * len(sisu))})  # fmt: skip
    return plots.hessian_spectra_figure(t, "hessian")


def eigvec_responses(p: dict, exp: str) -> go.Figure:
    spec = p[exp]["population"]["steady_state_dynamics"]
    k, n = int(spec["n_modes"]), int(spec["n_steps"])
    resp = pd.DataFrame({"mode": np.repeat(np.arange(k), n),
                         "step": np.tile(np.arange(1, n + 1), k),
                         "fx": RNG.normal(size=k * n), "fy": RNG.normal(size=k * n)})  # fmt: skip
    modes = pd.DataFrame({"mode": np.arange(k), "abs_eigenvalue": RNG.uniform(size=k),
                          "decay": RNG.uniform(size=k)})  # fmt: skip
    return plots.eigvec_responses_figure(resp, modes, "eigvec")


def context_influence(p: dict, exp: str) -> go.Figure:
    sisu, m = p[exp]["population"]["fps_steady"]["sisu"], n_members(p[exp])
    t = pd.DataFrame({"label": np.repeat([f"member {i}" for i in range(m)], len(sisu)),
                      "sisu": np.tile(sisu, m)})  # fmt: skip
    for c in ("fp_shift", "max_abs_eigenvalue", "effective_gain"):
        t[c] = RNG.uniform(size=len(t))
    return plots.context_influence_figure(t, "label", "context")


def pca_scree(p: dict, exp: str) -> go.Figure:
    k = int(p[exp]["population"]["pca_tangling"]["n_components"])
    return plots.scree_figure(np.sort(RNG.dirichlet(np.ones(k)))[::-1], "scree")


# ----------------------------------------------------------------------------- task_vs_data


def task_vs_data(p: dict) -> dict[str, go.Figure]:
    """draw_figures of the pipeline on one pair at the largest source's shapes."""
    t = p["task_vs_data"]
    src = max(t["sources"].values(), key=lambda s: s["hyperparams"]["task"].get("n_steps", 0))
    h = int(src["hyperparams"]["model"]["hidden_size"])
    k = int(src["hyperparams"]["task"]["n_steps"])
    sp = t["spiking"]
    n_valid, n_neurons = int(sp["n_valid"]), int(sp["n_held_in"]) + int(sp["n_held_out"])
    n_fp = int(t["comparison"]["n_candidates"])
    latents = RNG.normal(size=(n_valid, k, h))
    pair = {
        "true_latents": latents, "inferred_mapped": latents + 0.1,
        "spikes": RNG.poisson(0.5, (k, n_neurons)).astype(float),
        "true_rates": RNG.uniform(size=(k, n_neurons)),
        "inferred_rates": RNG.uniform(size=(k, n_neurons)),
        "held_out": np.arange(int(sp["n_held_in"]), n_neurons),
        "source_points": RNG.normal(size=(n_fp, h)), "source_stable": RNG.uniform(size=n_fp) < 0.5,
        "model_points": RNG.normal(size=(n_fp, h)), "model_stable": RNG.uniform(size=n_fp) < 0.5,
    }  # fmt: skip
    models = list(t["data_models"])
    sources = list(t["sources"])
    horizons = next(iter(t["data_models"].values()))["train"]["rollout_horizons"]
    rollout = pd.DataFrame(
        [(s, m, hz, RNG.uniform()) for s in sources for m in models for hz in horizons],
        columns=["source", "model", "horizon", "error"],
    )
    comparison = pd.DataFrame(
        [(s, m) for s in sources for m in models], columns=["source", "model"]
    )
    for metric in tvd_nodes.METRIC_BARS:
        comparison[metric] = RNG.uniform(size=len(comparison))
    latents_f, rasters, roll, fps, bars = tvd_nodes.draw_figures(
        {"src__model": pair}, comparison, rollout, t["figures"]
    )  # fmt: skip
    return {"tvd_latents": latents_f["src__model"], "tvd_rasters": rasters["src__model"],
            "tvd_rollout": roll["all"], "tvd_fixed_points": fps["src__model"],
            "tvd_metrics": bars["all"]}  # fmt: skip


# ----------------------------------------------------------------------------- training dynamics


def training_dynamics(p: dict, n_records: int | None) -> dict[str, go.Figure]:
    """The training-dynamics figures of a trace of S records (conf: n_steps / record_every)."""
    from ntdyn.pipelines.training_dynamics import nodes as td

    t = p["training_dynamics"]
    hp, an = t["hyperparams"], t["analyses"]
    s = n_records or int(hp["train"]["n_steps"]) // int(hp["train"]["record_every"])
    steps = (np.arange(s) + 1) * int(hp["train"]["record_every"])
    scalars = pd.DataFrame({"step": steps})
    for c in ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "learning_rate",
              "grad_norm", "weight_density"):  # fmt: skip
        scalars[c] = RNG.uniform(0.01, 1, s)
    k = int(an["pca"]["n_components"])
    scores = pd.DataFrame({"step": np.repeat(steps, k), "component": np.tile(np.arange(k), s),
                           "score": RNG.normal(size=s * k)})  # fmt: skip
    variance = pd.DataFrame({"component": np.arange(k), "explained_variance_ratio": np.ones(k) / k})
    n_f = s // 2
    spectra = pd.DataFrame({
        "component": np.repeat(np.arange(an["psd"]["n_components"]), n_f),
        "frequency": np.tile(np.arange(1, n_f + 1) / s, an["psd"]["n_components"]),
    })  # fmt: skip
    spectra["power"] = RNG.uniform(size=len(spectra))
    sizes = [64, *hp["model"]["hidden_sizes"], 10]
    tsne = pd.DataFrame({"layer": np.concatenate([[f"l{i}"] * n for i, n in enumerate(sizes[1:])]),
                         "unit": np.concatenate([np.arange(n) for n in sizes[1:]])})  # fmt: skip
    tsne["x"], tsne["y"] = RNG.normal(size=(2, len(tsne)))
    pairs = [(f"l{i}", a, b) for i in range(1, len(sizes) - 1) for a in range(sizes[i + 1])
             for b in range(sizes[i])]  # fmt: skip
    corr = pd.DataFrame(pairs, columns=["layer", "post", "pre"])
    corr["correlation"], corr["weight"] = RNG.uniform(-1, 1, (2, len(corr)))
    corr["strongest"] = np.arange(len(corr)) < int(an["correlation"]["n_pairs"])
    lib = np.linspace(10, s, 8).astype(int)
    ccm = pd.concat([
        pd.DataFrame({"library_size": np.repeat(lib, an["ccm"]["sample"]), "pair": f"{x} / {y}",
                      "x_name": x, "y_name": y})
        for x, y in an["ccm"]["pairs"]
    ], ignore_index=True)  # fmt: skip
    ccm["x_xmap_y"], ccm["y_xmap_x"] = RNG.uniform(size=(2, len(ccm)))
    n_train = int(round(an["ar"]["train_fraction"] * s))
    ar = pd.DataFrame(
        {
            "step": steps,
            "series": "test_loss",
            "observed": RNG.uniform(size=s),
            "part": np.where(np.arange(s) < n_train, "fit", "forecast"),
        }
    )
    ar["forecast"] = np.where(ar["part"] == "forecast", RNG.uniform(size=s), np.nan)
    ar["naive"] = np.where(ar["part"] == "forecast", 0.5, np.nan)
    g = int(an["states"]["grid"])
    states = pd.DataFrame({"step": steps, "state": RNG.integers(0, 6, s)})
    states["x"], states["y"] = RNG.normal(size=(2, s))
    density = {
        "density": RNG.uniform(size=(g, g)),
        "labels_map": RNG.integers(0, 6, (g, g)),
        "edges_x": np.linspace(-3, 3, g + 1),
        "edges_y": np.linspace(-3, 3, g + 1),
    }
    figs = td.draw_figures(scalars, scores, variance, spectra, tsne, corr, ccm, ar, states, density)
    return {f"td_{next(iter(f))}": next(iter(f.values())) for f in figs}


# ----------------------------------------------------------------------------- main

PART_KINDS: dict[str, Callable] = {
    "loss_curves": loss_curves, "center_out": center_out, "aligned_profiles": aligned_profiles,
    "measure_distributions": measure_distributions, "measures_vs_sisu": measures_vs_sisu,
    "feedback_responses": feedback_responses, "sisu_pert": sisu_pert,
    "unit_response_profiles": unit_response_profiles, "regression_scatter": regression_scatter,
    "ablation_ranking": ablation_ranking, "pca_scree": pca_scree, "fps_reach_pc": fps_reach_pc,
    "reach_context": reach_context, "effective_directions": effective_directions,
    "tangling": tangling, "dose_response": dose_response, "hessian_spectra": hessian_spectra,
    "eigvec_responses": eigvec_responses, "context_influence": context_influence,
}  # fmt: skip
FIXED_POINT_KINDS = {"fps_eigenvalues": fps_eigenvalues, "pc_trajectories": pc_trajectories}
# the part-1 pipeline makes only the first five kinds; part 2 makes every kind
PART1_KINDS = ("loss_curves", "center_out", "aligned_profiles", "measure_distributions",
               "feedback_responses")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="full", help="conf environment over conf/base")
    ap.add_argument(
        "--fixed-points",
        type=int,
        default=3000,
        help="steady-state fixed points of one model (fps_eigenvalues, pc_trajectories)",
    )
    ap.add_argument(
        "--td-records",
        type=int,
        default=None,
        help="records of the training-dynamics trace (default: from conf)",
    )
    ap.add_argument(
        "--td-long-records",
        type=int,
        default=30_000,
        help="records of a long training-dynamics trace, measured too (0: not measured)",
    )
    add_out_option(ap)
    args = ap.parse_args()
    p = conf_parameters(args.env)
    results: dict[str, dict] = {}

    def measure(name: str, build: Callable[[], go.Figure | dict[str, go.Figure]]) -> None:
        t0 = time.perf_counter()
        built = build()
        seconds = time.perf_counter() - t0
        for kind, fig in built.items() if isinstance(built, dict) else [(name, built)]:
            size = file_bytes(fig)
            results[kind] = {
                "mb": round(max(size.values()) / MB, 3),
                "json_bytes": size["json"],
                "html_bytes": size["html"],
                "build_s": round(seconds, 2),
            }
            print(f"{kind:32s} {results[kind]['mb']:8.3f} MB", file=sys.stderr)

    for kind in PART1_KINDS:
        measure(f"part1.{kind}", lambda k=kind: PART_KINDS[k](p, "analysis_part1"))
    for kind, build in PART_KINDS.items():
        measure(f"part2.{kind}", lambda b=build: b(p, "analysis_part2"))
    for kind, build in FIXED_POINT_KINDS.items():
        measure(f"part2.{kind}", lambda b=build: b(p, "analysis_part2", args.fixed_points))
    measure("task_vs_data", lambda: task_vs_data(p))
    measure("training_dynamics", lambda: training_dynamics(p, args.td_records))
    if args.td_long_records:
        n = args.td_long_records
        measure("td_long", lambda: {f"{k}@{n}": f for k, f in training_dynamics(p, n).items()})
    config = {"env": args.env, "fixed_points_per_model": args.fixed_points,
              "td_records": args.td_records, "td_long_records": args.td_long_records,
              "limit_mb": 5.0}  # fmt: skip
    largest = max(results, key=lambda k: results[k]["mb"])
    summary = {"largest": largest, "largest_mb": results[largest]["mb"],
               "over_2_mb": sorted(k for k, r in results.items() if r["mb"] > 2.0)}  # fmt: skip
    save("figure_sizes", config, {"kinds": results, **summary}, args.out)


if __name__ == "__main__":
    main()
