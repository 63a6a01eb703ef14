"""Training-dynamics nodes: record how an MLP learns, then analyse the trace (docs/science.md §7).

Thin wrappers: the work is in ntdyn.training.recording and ntdyn.analysis.learning.
Every analysis table carries the analysis name in its dataset and file name.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from ntdyn import plots
from ntdyn.analysis import learning
from ntdyn.hyperparams import flatten, hyperparams_hash
from ntdyn.hyperparams.tables import validate_table
from ntdyn.models.serialisation import save_model
from ntdyn.pipelines.training.nodes import checkpoint_config
from ntdyn.store import Record, RecordStore, record_figure_set, reuse_or_compute
from ntdyn.store.claims import RECORDED, compute_once
from ntdyn.store.records import MODEL
from ntdyn.store.reuse import write_parquet_tables
from ntdyn.tasks.digits import load_classification_data
from ntdyn.training.checkpoint import remove as remove_checkpoint
from ntdyn.training.recording import (
    check_recording_hyperparams,
    parameter_trajectory,
    train_recorded,
)

log = logging.getLogger(__name__)

TRACE_TABLES = ("scalars", "layers", "weights", "activations")
TRACE_DIR = "trace"


def record_training(
    hyperparams: dict, store: RecordStore, options: dict
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """Train the MLP while recording, or read the trace of the recorded model with this hash.

    Returns the four trace tables (validated by pandera) and {hash, run_id, status}.
    """
    hp = flatten(hyperparams)
    check_recording_hyperparams(hp)
    data = load_classification_data(hp)
    hp |= {"data__n_features": data.n_features, "data__n_classes": data.n_classes}
    h = hyperparams_hash(hp)
    traced: list[list[pd.DataFrame]] = []

    checkpoint = checkpoint_config(store, options)

    def train_and_record(hashes: list[str]) -> dict[str, Record]:
        trace = train_recorded(hp, data, progress=options["progress"], checkpoint=checkpoint)
        traced.append([trace.scalars, trace.layers, trace.weights, trace.activations])
        record = _record_trace(store, h, hp, trace, traced[0], options)
        if checkpoint is not None:  # the record holds the model and its trace now
            remove_checkpoint(checkpoint, h)
        return {h: record}

    [(rec, status)] = compute_once(store, MODEL, [h], store.find_model, train_and_record,
                                   lambda h: f"recorded training {h}",
                                   "cache hit: %s is record %s; not training").values()  # fmt: skip
    if status == RECORDED:
        tables, status = traced[0], "trained"
    else:
        with tempfile.TemporaryDirectory() as tmp:
            folder = store.download_artifact(rec, TRACE_DIR, tmp)
            tables = [pd.read_parquet(Path(folder) / f"{name}.parquet") for name in TRACE_TABLES]
    return (*tables, {"hash": h, "run_id": rec.run_id, "status": status})


def _record_trace(store: RecordStore, h: str, hp: dict, trace, tables: list[pd.DataFrame],
                  options: dict) -> Record:  # fmt: skip
    """Record the recorded MLP: its model file, step metrics and the validated trace tables."""
    for name, table in zip(TRACE_TABLES, tables, strict=True):
        validate_table(f"trace_{name}", table)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / TRACE_DIR
        folder.mkdir()
        for name, table in zip(TRACE_TABLES, tables, strict=True):
            table.to_parquet(folder / f"{name}.parquet", index=False)
        path = Path(tmp) / f"{h}.eqx"
        save_model(
            path,
            trace.model,
            {"kind": "mlp_classifier", "hash": h, "hyperparams": hp, "n_replicates": 1},
        )
        scalars = trace.scalars
        history = scalars.melt(id_vars="step", var_name="term", value_name="value")
        return store.record_model(
            hash=h,
            params=hp,
            history=history.assign(replicate=0),
            model_file=path,
            metric_every=int(options["metric_every"]),
            extra_artifacts=[folder],
            tags={"ntdyn.label": "training_dynamics mlp"},
        )


# ----------------------------------------------------------------------------- analyses


def pca(weights: pd.DataFrame, params: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """PCA of the parameter trajectory: (scores: step, component, score;
    variance: component, explained_variance_ratio)."""
    steps, trajectory = parameter_trajectory(weights)
    fit = learning.parameter_pca(trajectory.astype(np.float64), int(params["n_components"]))
    k = fit.scores.shape[1]
    scores = pd.DataFrame(
        {
            "step": np.repeat(steps, k),
            "component": np.tile(np.arange(k), len(steps)),
            "score": fit.scores.ravel(),
        }
    )
    variance = pd.DataFrame(
        {"component": np.arange(k), "explained_variance_ratio": fit.explained_variance_ratio}
    )
    return scores, variance


def _scores_matrix(scores: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    wide = scores.pivot(index="step", columns="component", values="score").sort_index()
    return wide.index.to_numpy(), wide.to_numpy()


def _interval(steps: np.ndarray) -> int:
    return int(np.diff(steps)[0]) if len(steps) > 1 else 1


def psd(scores: pd.DataFrame, params: dict) -> pd.DataFrame:
    """Power spectral density of the top components (component, frequency per step, power)."""
    steps, matrix = _scores_matrix(scores)
    return learning.power_spectra(matrix, _interval(steps), int(params["n_components"]))


def _layer_arrays(weights: pd.DataFrame, activations: pd.DataFrame, names: list[str]):
    """Final incoming weights (n_out, n_in) and activations (S, n_probe, n_out) per layer."""
    last = weights[(weights["step"] == weights["step"].max()) & (weights["input"] >= 0)]
    w_list, a_list = [], []
    for name in names:
        w = last[last["layer"] == name].sort_values(["unit", "input"])
        n_out = w["unit"].nunique()
        w_list.append(w["value"].to_numpy(np.float64).reshape(n_out, -1))
        a = activations[activations["layer"] == name].sort_values(["step", "probe", "unit"])
        n_steps, n_probe = a["step"].nunique(), a["probe"].nunique()
        a_list.append(a["value"].to_numpy(np.float64).reshape(n_steps, n_probe, n_out))
    return w_list, a_list


def _names(weights: pd.DataFrame) -> list[str]:
    layer = weights["layer"]
    return list(layer.cat.categories) if hasattr(layer, "cat") else sorted(layer.unique())


def tsne(weights: pd.DataFrame, activations: pd.DataFrame, params: dict) -> pd.DataFrame:
    """t-SNE of units (incoming weights + activation profile): layer, unit, x, y."""
    names = _names(weights)
    w_list, a_list = _layer_arrays(weights, activations, names)
    features = learning.unit_features(w_list, a_list)
    emb = learning.unit_tsne(features, float(params["perplexity"]), int(params["seed"]))
    layer = np.concatenate([[n] * w.shape[0] for n, w in zip(names, w_list, strict=True)])
    unit = np.concatenate([np.arange(w.shape[0]) for w in w_list])
    return pd.DataFrame({"layer": layer, "unit": unit, "x": emb[:, 0], "y": emb[:, 1]})


def correlation(weights: pd.DataFrame, activations: pd.DataFrame, params: dict) -> pd.DataFrame:
    """Co-activity vs connecting weight between consecutive hidden layers ("fire together,
    wire together"): all pairs with layer, post, pre, correlation, weight, strongest."""
    names = _names(weights)
    w_list, a_list = _layer_arrays(weights, activations, names)
    n_pairs = int(params["n_pairs"])
    rows = []
    for l in range(1, len(names)):
        # samples: probe inputs x records, at the final third of training (the learned code)
        pre, post = a_list[l - 1], a_list[l]
        tail = slice(2 * len(pre) // 3, None)
        pre_s = pre[tail].reshape(-1, pre.shape[-1])
        post_s = post[tail].reshape(-1, post.shape[-1])
        corr = learning.cross_correlation(pre_s, post_s)
        strongest = learning.strongest_pairs(corr, w_list[l], n_pairs)
        post_idx, pre_idx = np.meshgrid(
            np.arange(corr.shape[0]), np.arange(corr.shape[1]), indexing="ij"
        )
        table = pd.DataFrame(
            {
                "layer": names[l],
                "post": post_idx.ravel(),
                "pre": pre_idx.ravel(),
                "correlation": corr.ravel(),
                "weight": w_list[l].ravel(),
            }
        )
        key = set(zip(strongest["post"], strongest["pre"], strict=True))
        table["strongest"] = [
            (p, q) in key for p, q in zip(table["post"], table["pre"], strict=True)
        ]
        table["spearman_rho"] = learning.correlation_weight_relation(corr, w_list[l])
        rows.append(table)
    return pd.concat(rows, ignore_index=True)


def ccm(scalars: pd.DataFrame, params: dict) -> pd.DataFrame:
    """Convergent cross mapping for each [x, y] pair of training variables."""
    tables = []
    for x_name, y_name in params["pairs"]:
        for name in (x_name, y_name):
            if name not in scalars:
                raise ValueError(
                    f"training_dynamics.analyses.ccm.pairs: {name!r} is not a "
                    f"training variable; known: {list(scalars.columns[1:])}"
                )
        t = learning.convergent_cross_mapping(
            scalars[x_name].to_numpy(),
            scalars[y_name].to_numpy(),
            embedding_dim=int(params["embedding_dim"]),
            tau=int(params["tau"]),
            sample=int(params["sample"]),
            seed=int(params["seed"]),
        )
        tables.append(t.assign(pair=f"{x_name} / {y_name}", x_name=x_name, y_name=y_name))
    return pd.concat(tables, ignore_index=True)


def ar(scalars: pd.DataFrame, params: dict) -> pd.DataFrame:
    """AR baseline forecast of a training variable: step, observed, forecast, naive, part."""
    name = params["series"]
    series = scalars[name].to_numpy(np.float64)
    n_train = int(round(float(params["train_fraction"]) * len(series)))
    fit = learning.ar_forecast(series, int(params["order"]), n_train)
    forecast = np.full(len(series), np.nan)
    forecast[n_train:] = fit.forecast
    naive = np.full(len(series), np.nan)
    naive[n_train:] = series[n_train - 1]
    return pd.DataFrame(
        {
            "step": scalars["step"],
            "series": name,
            "observed": series,
            "forecast": forecast,
            "naive": naive,
            "part": np.where(np.arange(len(series)) < n_train, "fit", "forecast"),
            "rmse": fit.rmse,
            "naive_rmse": fit.naive_rmse,
        }
    )


def states(scores: pd.DataFrame, params: dict) -> tuple[pd.DataFrame, dict]:
    """Learning states from the behavioural map: (step, state, x, y) and the map arrays."""
    steps, matrix = _scores_matrix(scores)
    k = min(int(params["n_components"]), matrix.shape[1])
    res = learning.learning_states(
        matrix[:, :k],
        _interval(steps),
        n_frequencies=int(params["n_frequencies"]),
        perplexity=float(params["perplexity"]),
        grid=int(params["grid"]),
        sigma=float(params["sigma"]),
        seed=int(params["seed"]),
    )
    table = pd.DataFrame(
        {"step": steps, "state": res.state, "x": res.embedding[:, 0], "y": res.embedding[:, 1]}
    )
    density = {
        "density": res.density,
        "labels_map": res.labels_map,
        "edges_x": res.edges_x,
        "edges_y": res.edges_y,
    }
    return table, density


# ----------------------------------------------------------------------------- record + figures


def record_analyses(
    record: dict,
    pca_variance: pd.DataFrame,
    ccm_table: pd.DataFrame,
    ar_table: pd.DataFrame,
    states_table: pd.DataFrame,
    correlation_table: pd.DataFrame,
    analyses: dict,
    store: RecordStore,
) -> dict:
    """One evaluation record of the analyses, linked to the recorded model; summary metrics."""
    params = {"analyses__" + k: v for k, v in flatten(analyses).items()}
    h = hyperparams_hash(
        {"analysis": "training_dynamics", "params": params, "model": record["hash"]}
    )
    tables = {"pca": pca_variance, "ccm": ccm_table, "ar": ar_table, "states": states_table}

    outcome = reuse_or_compute(
        store, hash=h, analysis="training_dynamics", compute=lambda: tables,
        write=write_parquet_tables,
        read=lambda artifact: None, params=params, model_hashes=[record["hash"]],
        metrics=lambda tables: _analysis_metrics(*tables.values(), correlation_table),
    )  # fmt: skip
    rec, status = outcome.record, outcome.status
    return {
        "hash": h,
        "run_id": rec.run_id,
        "analysis": "training_dynamics",
        "model_hashes": [record["hash"]],
        "status": status,
    }


def _analysis_metrics(
    pca_variance: pd.DataFrame,
    ccm_table: pd.DataFrame,
    ar_table: pd.DataFrame,
    states_table: pd.DataFrame,
    correlation_table: pd.DataFrame,
) -> dict:
    """The summary metrics of the analyses record."""
    metrics = {
        f"pca.evr_pc{int(c) + 1}": v
        for c, v in zip(
            pca_variance["component"], pca_variance["explained_variance_ratio"], strict=True
        )
        if c < 5
    }
    last = ccm_table.sort_values("library_size").groupby("pair").last()
    for pair, row in last.iterrows():
        tag = pair.replace(" / ", "_vs_")
        metrics[f"ccm.{tag}.x_xmap_y"] = float(row["x_xmap_y"])
        metrics[f"ccm.{tag}.y_xmap_x"] = float(row["y_xmap_x"])
    metrics |= {
        "ar.rmse": float(ar_table["rmse"].iloc[0]),
        "ar.naive_rmse": float(ar_table["naive_rmse"].iloc[0]),
        "states.n_states": int(states_table["state"].nunique()),
    }
    for layer, rho in correlation_table.groupby("layer")["spearman_rho"].first().items():
        if np.isfinite(rho):
            metrics[f"correlation.{layer}.spearman_rho"] = float(rho)
    return metrics


FIGURE_KINDS = (
    "td_learning_curves",
    "td_pca",
    "td_psd",
    "td_tsne",
    "td_correlation",
    "td_ccm",
    "td_ar",
    "td_states",
)


def draw_figures(
    scalars: pd.DataFrame,
    scores: pd.DataFrame,
    variance: pd.DataFrame,
    spectra: pd.DataFrame,
    tsne_table: pd.DataFrame,
    correlation_table: pd.DataFrame,
    ccm_table: pd.DataFrame,
    ar_table: pd.DataFrame,
    states_table: pd.DataFrame,
    density: dict,
) -> tuple[dict, ...]:
    """One figure per analysis, each named after it (`pca`, `psd`, `tsne`, `ccm`, ...)."""
    steps, matrix = _scores_matrix(scores)
    strongest = correlation_table[correlation_table["strongest"]]
    loss = scalars.set_index("step").loc[states_table["step"], "test_loss"].to_numpy()
    figs = {
        "learning_curves": plots.learning_curves_figure(scalars, "learning curves"),
        "pca": plots.parameter_trajectory_figure(
            matrix,
            steps,
            variance["explained_variance_ratio"].to_numpy(),
            "parameter trajectory (PCA)",
        ),
        "psd": plots.power_spectra_figure(spectra, "power spectra of the top PCs"),
        "tsne": plots.unit_tsne_figure(
            tsne_table[["x", "y"]].to_numpy(),
            tsne_table["layer"].to_numpy(),
            "units (t-SNE)",
            hover=[
                f"{l} unit {u}"
                for l, u in zip(tsne_table["layer"], tsne_table["unit"], strict=True)
            ],
        ),
        "correlation": plots.correlation_weight_figure(
            strongest, "co-activity vs connecting weight", all_pairs=correlation_table
        ),
        "ccm": plots.ccm_figure(ccm_table, "convergent cross mapping"),
        "ar": plots.ar_forecast_figure(
            ar_table["step"].to_numpy(),
            ar_table["observed"].to_numpy(),
            int((ar_table["part"] == "fit").sum()),
            ar_table["forecast"].dropna().to_numpy(),
            f"AR forecast of {ar_table['series'].iloc[0]}",
            naive=ar_table["naive"].dropna().to_numpy(),
        ),
        "states": plots.learning_states_figure(
            states_table["step"].to_numpy(),
            states_table["state"].to_numpy(),
            states_table[["x", "y"]].to_numpy(),
            density["density"].T,
            density["labels_map"].T,
            density["edges_x"],
            density["edges_y"],
            "states of learning",
            loss=loss,
        ),
    }
    return tuple({name: fig} for name, fig in figs.items())


def record_figures(kind: str, figures: dict, evaluation: dict, store: RecordStore) -> pd.DataFrame:
    """Record each figure with its kind, analysis name and the evaluation hash."""
    return record_figure_set(
        store, kind, figures, params_of=lambda name: {"analysis": name},
        evaluation_hash=evaluation["hash"], version=plots.figure_version(kind),
    )  # fmt: skip
