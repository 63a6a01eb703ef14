"""Record dataclass, error types and the tag names that define the record schema in MLflow."""

from __future__ import annotations

from dataclasses import dataclass, field

# Record kinds.
MODEL = "model"
EVALUATION = "evaluation"
FIGURE = "figure"
RECORD_KINDS = (MODEL, EVALUATION, FIGURE)

# Tags written on every record run.
TAG_RECORD = "ntdyn.record"  # the record kind
TAG_HASH = "ntdyn.hash"  # the record's content hash (identity)
TAG_LABEL = "ntdyn.label"  # optional short human label used in default run names
# Evaluation tags.
TAG_ANALYSIS = "ntdyn.analysis"
TAG_MODELS = "ntdyn.models"  # comma-joined sorted model hashes
TAG_MODEL_PREFIX = "ntdyn.model."  # one tag "ntdyn.model.<hash>" = "1" per evaluated model
TAG_ARTIFACTS = "ntdyn.artifacts"  # comma-joined names of the artifacts an evaluation logged
# Figure tags.
TAG_FIGURE_KIND = "ntdyn.figure_kind"
TAG_EVALUATION = "ntdyn.evaluation"  # hash of the evaluation a figure was drawn from
TAG_SOURCES = "ntdyn.sources"  # comma-joined hashes of the other records a figure draws on
TAG_FIGURE_VERSION = "ntdyn.figure_version"  # version of the code that drew the figure
# MLflow's own tags.
TAG_PARENT_RUN = "mlflow.parentRunId"
TAG_RUN_NAME = "mlflow.runName"

# Artifact layout.
MODEL_ARTIFACT_DIR = "model"
HISTORY_ARTIFACT = "history.parquet"
FIGURE_ARTIFACT_DIR = "figure"
FIGURE_JSON = "figure.json"
FIGURE_HTML = "figure.html"


@dataclass(frozen=True)
class Record:
    """One finished MLflow run that stores a model, an evaluation or a figure."""

    kind: str  # "model" | "evaluation" | "figure"
    hash: str
    run_id: str
    params: dict[str, str] = field(default_factory=dict)  # MLflow params as logged (strings)
    tags: dict[str, str] = field(default_factory=dict)
    artifact_uri: str = ""

    @property
    def run_name(self) -> str | None:
        return self.tags.get(TAG_RUN_NAME)

    @property
    def parent_run_id(self) -> str | None:
        return self.tags.get(TAG_PARENT_RUN)

    @property
    def model_hashes(self) -> list[str]:
        """For evaluations: the sorted hashes of the models it evaluated (empty otherwise)."""
        hashes = {k[len(TAG_MODEL_PREFIX) :] for k in self.tags if k.startswith(TAG_MODEL_PREFIX)}
        if not hashes and self.tags.get(TAG_MODELS):
            hashes = {h for h in self.tags[TAG_MODELS].split(",") if h}
        return sorted(hashes)


class AmbiguousQueryError(LookupError):
    """Several records match a query that should identify exactly one.

    ``matches`` holds the matching records and ``differing`` the parameters in which they
    differ, with their distinct values.
    """

    def __init__(
        self,
        message: str,
        matches: list[Record] | None = None,
        differing: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.matches = list(matches or [])
        self.differing = dict(differing or {})


class RecordNotFoundError(LookupError):
    """No record matches a query."""
