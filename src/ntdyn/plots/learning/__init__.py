"""Training-dynamics figures: how an MLP classifier learns, recorded every k training steps.

Builders for the "training_dynamics" pipeline. Steps are optimiser steps (training
batches). What is where:

- `_curves.py`: `learning_curves_figure` (train/test loss and accuracy vs step, plus the
  optimiser scalars EXTRA_SCALARS when recorded);
- `_trajectory.py`: `parameter_trajectory_figure` (the PCA trajectory of the parameters)
  and `power_spectra_figure` (power spectra of that trajectory's PCs);
- `_tsne.py`: `unit_tsne_figure` (a t-SNE map of units);
- `_correlation_weight.py`: `correlation_weight_figure` (correlation vs weight of unit
  pairs);
- `_ccm.py`: `ccm_figure` (convergent cross mapping, CCM);
- `_states.py`: `learning_states_figure` (discrete learning states on a density map);
- `_forecast.py`: `ar_forecast_figure` (an autoregressive (AR) forecast of the loss);
- `_common.py`: what they share: the colours FAINT and OBSERVED_COLOUR, EXTRA_SCALARS,
  MAX_POINTS and the input checks.

A figure of per-record series draws at most `max_points` (default MAX_POINTS) records per
line, evenly spaced with the first and last included (`sampling.evenly`): the trace grows
with the number of steps, its figures do not (a million-step run recorded every 10 steps
would otherwise write 10^5 points per line).
"""

from ntdyn.plots.learning._ccm import ccm_figure
from ntdyn.plots.learning._common import EXTRA_SCALARS, FAINT, MAX_POINTS, OBSERVED_COLOUR
from ntdyn.plots.learning._correlation_weight import correlation_weight_figure
from ntdyn.plots.learning._curves import learning_curves_figure
from ntdyn.plots.learning._forecast import ar_forecast_figure
from ntdyn.plots.learning._states import learning_states_figure
from ntdyn.plots.learning._trajectory import parameter_trajectory_figure, power_spectra_figure
from ntdyn.plots.learning._tsne import unit_tsne_figure

__all__ = [
    "EXTRA_SCALARS",
    "FAINT",
    "MAX_POINTS",
    "OBSERVED_COLOUR",
    "ar_forecast_figure",
    "ccm_figure",
    "correlation_weight_figure",
    "learning_curves_figure",
    "learning_states_figure",
    "parameter_trajectory_figure",
    "power_spectra_figure",
    "unit_tsne_figure",
]
