"""Plotly figure builders: data in, `go.Figure` out; no I/O, no Kedro."""

from ntdyn.plots.reaching import (
    aligned_profiles_figure,
    center_out_figure,
    feedback_response_figure,
    measure_distributions_figure,
)
from ntdyn.plots.training import loss_curves_figure

__all__ = [
    "aligned_profiles_figure",
    "center_out_figure",
    "feedback_response_figure",
    "loss_curves_figure",
    "measure_distributions_figure",
]
