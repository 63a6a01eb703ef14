"""Convergent cross mapping: does training variable X drive Y?

`convergent_cross_mapping` runs pyEDM's CCM (Sugihara et al. 2012) between two series of
records; `ccm_direction` reads the direction off its table (docs/science.md §7).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ntdyn.analysis.learning._checks import _as_1d


def convergent_cross_mapping(
    x: np.ndarray,
    y: np.ndarray,
    embedding_dim: int = 3,
    tau: int = 1,
    library_sizes: Sequence[int] | None = None,
    sample: int = 50,
    seed: int = 0,
    exclusion_radius: int = 0,
) -> pd.DataFrame:
    """Convergent cross mapping (Sugihara et al. 2012, Science 338:496) between x and y (N,).

    Columns:
    - library_size: number of library points L;
    - x_xmap_y: Pearson skill of estimating y from the shadow manifold of x (pyEDM
      columns=x, target=y, its 'x:y'). High and rising with L means **y drives x**: a
      cause leaves its trace in the dynamics of its effect;
    - y_xmap_x: skill of estimating x from y's shadow manifold (pyEDM 'y:x'): **x drives y**.

    Shadow manifolds are delay embeddings with `embedding_dim` (E) coordinates `tau` records
    apart (tau > 0 means lags into the past; pyEDM's tau is its negative). Skill is averaged
    over `sample` random libraries per size, drawn from `seed` (same seed, same numbers).
    library_sizes default to 8 sizes from E + 2 to N, spaced evenly. `exclusion_radius`
    drops neighbours within that many records of the predicted point (autocorrelation).
    """
    from pyEDM import CCM  # optional heavy dependency, only where used

    xs = _as_1d("x", x)
    ys = _as_1d("y", y)
    if xs.shape != ys.shape:
        raise ValueError(f"x and y must have the same length; got {xs.size} and {ys.size}")
    if embedding_dim < 1:
        raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
    if tau < 1:
        raise ValueError(f"tau must be >= 1 record (a lag into the past), got {tau}")
    if sample < 1:
        raise ValueError(f"sample must be >= 1, got {sample}")
    if exclusion_radius < 0:
        raise ValueError(f"exclusion_radius must be >= 0 records, got {exclusion_radius}")
    n = xs.size
    smallest = embedding_dim + 2  # pyEDM's minimum library for E + 1 neighbours
    if n < smallest + (embedding_dim - 1) * tau:
        raise ValueError(
            f"x and y have {n} records; embedding_dim={embedding_dim}, tau={tau} need >= "
            f"{smallest + (embedding_dim - 1) * tau}"
        )
    if library_sizes is None:
        library_sizes = np.unique(np.linspace(smallest, n, 8).round().astype(int))
    sizes = [int(size) for size in library_sizes]
    if not sizes or any(not smallest <= size <= n for size in sizes):
        raise ValueError(
            f"library_sizes must be non-empty, each in {smallest}..{n} "
            f"(embedding_dim + 2 .. N); got {sizes}"
        )
    frame = pd.DataFrame({"time": np.arange(n), "x": xs, "y": ys})
    table = CCM(
        dataFrame=frame,
        columns="x",
        target="y",
        libSizes=sizes,
        sample=sample,
        E=embedding_dim,
        tau=-tau,
        exclusionRadius=exclusion_radius,
        seed=seed,
        # In-process: no worker start-up, and bit-identical results for a given seed.
        parallel=False,
    )
    return pd.DataFrame(
        {
            "library_size": table["LibSize"].to_numpy(dtype=int),
            "x_xmap_y": table["x:y"].to_numpy(dtype=float),
            "y_xmap_x": table["y:x"].to_numpy(dtype=float),
        }
    )


def ccm_direction(table: pd.DataFrame, margin: float = 0.1) -> dict:
    """Summary of a `convergent_cross_mapping` table: which variable drives which.

    Returns a dict with x_drives_y (final y_xmap_x skill, at the largest library),
    y_drives_x (final x_xmap_y), x_drives_y_gain and y_drives_x_gain (final minus smallest-
    library skill; > 0 is the convergence CCM requires), and direction: "x->y" or "y->x" for
    the direction whose final skill is higher by >= `margin` and which converges, otherwise
    "undetermined".
    """
    missing = {"library_size", "x_xmap_y", "y_xmap_x"} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks columns {sorted(missing)}")
    if len(table) == 0:
        raise ValueError("table has no rows")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    ordered = table.sort_values("library_size")
    first, last = ordered.iloc[0], ordered.iloc[-1]
    x_to_y, y_to_x = float(last["y_xmap_x"]), float(last["x_xmap_y"])
    x_gain = x_to_y - float(first["y_xmap_x"])
    y_gain = y_to_x - float(first["x_xmap_y"])
    direction = "undetermined"
    if x_to_y - y_to_x >= margin and x_gain > 0:
        direction = "x->y"
    elif y_to_x - x_to_y >= margin and y_gain > 0:
        direction = "y->x"
    return {
        "x_drives_y": x_to_y,
        "y_drives_x": y_to_x,
        "x_drives_y_gain": x_gain,
        "y_drives_x_gain": y_gain,
        "direction": direction,
    }
