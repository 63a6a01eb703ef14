"""Analyses of a training trace: how a network learns (docs/science.md §7).

A classifier is trained and every `step_interval` training steps one record is taken: all
weights, losses, accuracies, gradient norms and the activations of every unit on a fixed probe
batch. S is the number of records. Everything here is NumPy/pandas in and out:

- `trajectory`: `parameter_pca` (`ParameterPCA`), `power_spectra` - PCA of the parameter
  trajectory (S, P) and the power spectra of its top components.
- `units`: `unit_features`, `unit_tsne` - a 2-D map of the units from their incoming weights
  and their activation profile over training.
- `correlations`: `unit_correlations`, `cross_correlation`, `strongest_pairs`,
  `correlation_weight_relation` - "fire together, wire together": does co-activity of two
  units go with their weight?
- `cross_mapping`: `convergent_cross_mapping`, `ccm_direction` - does training variable X
  drive Y (pyEDM CCM)?
- `autoregressive`: `ar_forecast` (`ARForecast`) - an autoregressive baseline forecast of a
  series such as the loss.
- `states`: `learning_states` (`LearningStates`), `morlet_amplitudes` - behavioural mapping
  of the trajectory (Berman et al. 2014, J R Soc Interface 11:20140672): Morlet wavelets ->
  t-SNE -> density -> watershed states of learning.
- `_checks`: the input checks they share (finite arrays of a given rank, z-scored columns).
"""

from ntdyn.analysis.learning.autoregressive import ARForecast, ar_forecast
from ntdyn.analysis.learning.correlations import (
    correlation_weight_relation,
    cross_correlation,
    strongest_pairs,
    unit_correlations,
)
from ntdyn.analysis.learning.cross_mapping import ccm_direction, convergent_cross_mapping
from ntdyn.analysis.learning.states import (
    MORLET_OMEGA0,
    LearningStates,
    learning_states,
    morlet_amplitudes,
)
from ntdyn.analysis.learning.trajectory import ParameterPCA, parameter_pca, power_spectra
from ntdyn.analysis.learning.units import WEIGHT_QUANTILES, unit_features, unit_tsne

__all__ = [
    "MORLET_OMEGA0",
    "WEIGHT_QUANTILES",
    "ARForecast",
    "LearningStates",
    "ParameterPCA",
    "ar_forecast",
    "ccm_direction",
    "convergent_cross_mapping",
    "correlation_weight_relation",
    "cross_correlation",
    "learning_states",
    "morlet_amplitudes",
    "parameter_pca",
    "power_spectra",
    "strongest_pairs",
    "unit_correlations",
    "unit_features",
    "unit_tsne",
]
