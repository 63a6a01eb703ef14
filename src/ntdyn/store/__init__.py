"""Records of models, evaluations and figures in MLflow, queryable by hyperparameters."""

from .figures import record_figure_set
from .mlflow_store import RecordStore
from .query import canonical_json, figure_hash, param_to_str, sanitize_metric_name
from .records import AmbiguousQueryError, Record, RecordNotFoundError
from .reuse import Outcome, reuse_or_compute

__all__ = [
    "AmbiguousQueryError",
    "Outcome",
    "Record",
    "RecordNotFoundError",
    "RecordStore",
    "canonical_json",
    "figure_hash",
    "param_to_str",
    "record_figure_set",
    "reuse_or_compute",
    "sanitize_metric_name",
]
