"""What the training-dynamics figures share: colours, the per-line record budget, input checks.

A figure of per-record series draws at most `max_points` (default MAX_POINTS) records per
line, evenly spaced with the first and last included (`sampling.evenly`): the trace grows
with the number of steps, its figures do not (a million-step run recorded every 10 steps
would otherwise write 10^5 points per line).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

FAINT = "rgba(128, 128, 128, 0.25)"
OBSERVED_COLOUR = "black"
EXTRA_SCALARS = ("learning_rate", "grad_norm", "weight_density")
# Records per line at most: 1000 points resolve a curve across a screen's width and keep a
# figure well under 1 MB however long the training ran.
MAX_POINTS = 1000


def _check_max_points(max_points: int) -> None:
    if max_points < 2:
        raise ValueError(f"max_points = {max_points!r}: must be an integer >= 2")


def _require(table: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{name} needs columns {missing}; got {list(table.columns)}")


def _vector(x, name: str, n: int | None = None) -> np.ndarray:
    """1-D float array; ValueError naming `name` unless it has `n` entries (when given)."""
    v = np.asarray(x, dtype=float)
    if v.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {v.shape}")
    if n is not None and len(v) != n:
        raise ValueError(f"{name} must have {n} entries; got {len(v)}")
    return v


def _scaled_to_max(values: np.ndarray) -> np.ndarray:
    """values / max |finite value|; unchanged when there is none or it is 0."""
    finite = np.abs(values[np.isfinite(values)])
    peak = finite.max() if finite.size else 0.0
    return values / peak if peak > 0 else values
