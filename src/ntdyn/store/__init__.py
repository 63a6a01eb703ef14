"""Records of models, evaluations and figures in MLflow, queryable by hyperparameters."""

from .mlflow_store import RecordStore
from .query import canonical_json, figure_hash, param_to_str, sanitize_metric_name
from .records import AmbiguousQueryError, Record, RecordNotFoundError

__all__ = [
    "AmbiguousQueryError",
    "Record",
    "RecordNotFoundError",
    "RecordStore",
    "canonical_json",
    "figure_hash",
    "param_to_str",
    "sanitize_metric_name",
]
