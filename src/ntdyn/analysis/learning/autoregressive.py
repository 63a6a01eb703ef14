"""The autoregressive baseline forecast of a series such as the loss.

A least-squares AR(order) fit on the start of the series and its iterated forecast of the
rest, against a naive forecast that repeats the last training value (docs/science.md §7).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ntdyn.analysis.learning._checks import _as_1d


@dataclass(frozen=True)
class ARForecast:
    """A least-squares AR(order) fit and its iterated forecast.

    intercept: c; coefficients: (order,) a_1..a_p of x_t = c + sum_i a_i x_{t-i}; forecast:
    (N - n_train,) predictions of series[n_train:], each fed back as input (no peeking);
    rmse: of the forecast; naive_rmse: of repeating the last training value (units of the
    series).
    """

    intercept: float
    coefficients: np.ndarray
    forecast: np.ndarray
    rmse: float
    naive_rmse: float


def ar_forecast(series: np.ndarray, order: int, n_train: int) -> ARForecast:
    """Fit AR(order) with intercept on series[:n_train] (N,), forecast series[n_train:].

    Needs n_train >= 2 * order + 1 (at least order + 1 equations for order + 1 unknowns)
    and n_train < N.
    """
    x = _as_1d("series", series)
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    if not 2 * order + 1 <= n_train < x.size:
        raise ValueError(
            f"n_train must be in {2 * order + 1}..{x.size - 1} (>= 2 * order + 1 to fit, < N "
            f"to leave something to forecast); got {n_train}"
        )
    train = x[:n_train]
    # Row t: [1, x_{t-1}, ..., x_{t-order}] for t = order..n_train-1.
    lags = np.column_stack([train[order - i : n_train - i] for i in range(1, order + 1)])
    design = np.column_stack([np.ones(n_train - order), lags])
    beta, *_ = np.linalg.lstsq(design, train[order:], rcond=None)
    intercept, coefficients = float(beta[0]), beta[1:]
    # The last `order` training values, then the forecast, each step fed back as input.
    path = np.concatenate([train[-order:], np.empty(x.size - n_train)])
    for t in range(x.size - n_train):
        path[order + t] = intercept + coefficients @ path[t : order + t][::-1]
    forecast = path[order:]
    target = x[n_train:]
    rmse = float(np.sqrt(np.mean((forecast - target) ** 2)))
    naive_rmse = float(np.sqrt(np.mean((train[-1] - target) ** 2)))
    return ARForecast(intercept, coefficients, forecast, rmse, naive_rmse)
