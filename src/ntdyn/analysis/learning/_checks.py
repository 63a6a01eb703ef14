"""Input checks shared by the training-trace analyses.

Every analysis takes NumPy arrays from the trace tables; these turn them into finite float
arrays of the expected rank (or a ValueError naming the argument) and z-score columns.
"""

from __future__ import annotations

import numpy as np


def _finite(name: str, value: np.ndarray, ndim: int) -> np.ndarray:
    """`value` as a finite float array of `ndim` dimensions, or a ValueError naming `name`."""
    arr = np.asarray(value, dtype=float)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf values")
    return arr


def _as_2d(name: str, value: np.ndarray) -> np.ndarray:
    """`value` as a finite float (N, M) array."""
    return _finite(name, value, 2)


def _as_1d(name: str, value: np.ndarray) -> np.ndarray:
    """`value` as a finite float (N,) array."""
    return _finite(name, value, 1)


def _zscore_columns(x: np.ndarray) -> np.ndarray:
    """Columns of x (N, M) centred and scaled to unit std (ddof 0); constant columns -> 0."""
    centred = x - x.mean(0)
    std = centred.std(0)
    return np.divide(centred, std, out=np.zeros_like(centred), where=std > 0)
