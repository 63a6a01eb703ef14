"""Unit stimulation and ablation: responses reduced to numbers, regressed on context."""

from __future__ import annotations

import numpy as np
import pandas as pd

CONTEXT = ("curl_amp", "sisu")


def unit_force_responses(
    control: np.ndarray, conditions: pd.DataFrame, window: tuple[int, int]
) -> pd.DataFrame:
    """Force response of each stimulated unit in each context, relative to baseline.

    control: (N, K, 2) control force (N), one trial per row of `conditions`
    (columns unit, stim_amp, curl_amp, sisu; unit = -1 marks baseline trials).
    window: [start, stop) steps over which the force is averaged.
    Returns one row per (unit, stim_amp, curl_amp, sisu): dfx, dfy (N, mean
    stimulated minus mean baseline over repeats), amplitude (N) and direction (rad).
    """
    start, stop = window
    mean_force = control[:, start:stop].mean(axis=1)
    trials = conditions.reset_index(drop=True).assign(fx=mean_force[:, 0], fy=mean_force[:, 1])
    keys = ["unit", "stim_amp", *CONTEXT]
    means = trials.groupby(keys, as_index=False)[["fx", "fy"]].mean()
    baseline = means[means["unit"] < 0].set_index(list(CONTEXT))[["fx", "fy"]]
    stimulated = means[means["unit"] >= 0].join(baseline, on=list(CONTEXT), rsuffix="_base")
    out = stimulated[keys].reset_index(drop=True)
    out["dfx"] = (stimulated["fx"] - stimulated["fx_base"]).to_numpy()
    out["dfy"] = (stimulated["fy"] - stimulated["fy_base"]).to_numpy()
    out["amplitude"] = np.hypot(out["dfx"], out["dfy"])
    out["direction"] = np.arctan2(out["dfy"], out["dfx"])
    return out


def centred_direction(responses: pd.DataFrame) -> pd.Series:
    """Direction relative to each unit's circular-mean direction, wrapped to (-pi, pi] rad."""
    mean = responses.groupby("unit")["direction"].transform(
        lambda d: np.arctan2(np.sin(d).mean(), np.cos(d).mean())
    )
    return np.angle(np.exp(1j * (responses["direction"] - mean)))


def regress_on_context(
    responses: pd.DataFrame, response: str, context: tuple[str, ...] = CONTEXT
) -> pd.DataFrame:
    """Per unit, least squares of `response` on [1, *context]; coefficients and R^2.

    Returns one row per unit: intercept, coef_<context var>..., r2, n.
    """
    rows = []
    for unit, group in responses.groupby("unit", sort=True):
        X = np.column_stack([np.ones(len(group)), group[list(context)].to_numpy(float)])
        y = group[response].to_numpy(float)
        beta, *_ = np.linalg.lstsq(X, y, rcond=None)
        resid = y - X @ beta
        total = ((y - y.mean()) ** 2).sum()
        r2 = 1.0 - (resid**2).sum() / total if total > 0 else np.nan
        rows.append(
            {"unit": int(unit), "intercept": beta[0]}
            | {f"coef_{c}": b for c, b in zip(context, beta[1:], strict=True)}
            | {"r2": r2, "n": len(group)}
        )
    return pd.DataFrame(rows)


def ablation_effects(measures: pd.DataFrame, measure_names: tuple[str, ...]) -> pd.DataFrame:
    """Change of each behaviour measure when a unit is silenced, ranked by |change|.

    measures: one row per trial with `ablated_unit` (-1 = intact) and the measure
    columns (one model's replicate). Returns long rows (unit, measure, delta,
    delta_std, rank): delta = mean(ablated) - mean(intact) in the measure's units,
    delta_std its standard error; rank 1 = largest |delta| for that measure.
    """
    intact = measures[measures["ablated_unit"] < 0]
    ablated = measures[measures["ablated_unit"] >= 0]
    rows = []
    for m in measure_names:
        base_mean, base_var, base_n = intact[m].mean(), intact[m].var(), len(intact)
        stats = ablated.groupby("ablated_unit")[m].agg(["mean", "var", "count"])
        delta = stats["mean"] - base_mean
        se = np.sqrt(stats["var"] / stats["count"] + base_var / base_n)
        table = pd.DataFrame(
            {"unit": stats.index.astype(int), "measure": m, "delta": delta.to_numpy(),
             "delta_std": se.to_numpy()}
        )  # fmt: skip
        table["rank"] = table["delta"].abs().rank(ascending=False, method="first").astype(int)
        rows.append(table)
    return pd.concat(rows, ignore_index=True)
