"""The record store: models, evaluations and figures as MLflow runs.

Only ``mlflow.MlflowClient`` is used to write, so the fluent API's global active-run state is
never changed. When a fluent run is active (kedro-mlflow opens one for a whole ``kedro run``),
every new record is created as its child run.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import mlflow
import mlflow.artifacts
import pandas as pd
from mlflow.entities import Metric, Param, Run, ViewType
from mlflow.exceptions import MlflowException

from .assets import (
    ASSET,
    ASSET_RUN_NAME,
    PLOTLY_JS,
    TAG_ASSET,
    TAG_PLOTLY_JS_VERSION,
    TAG_PLOTLY_VERSION,
    figure_html,
    plotly_asset_hash,
    plotly_asset_path,
    plotly_js_version,
    plotly_version,
    write_plotly_js,
)
from .claims import RECORDED, ClaimPolicy, Claims, compute_once
from .initialise import initialise_store
from .processes import TAG_PROCESS, this_process
from .query import (
    ambiguous_message,
    figure_hash,
    not_found_message,
    params_match,
    params_to_str,
    sanitize_metric_name,
    varying_params,
)
from .records import (
    EVALUATION,
    FIGURE,
    FIGURE_ARTIFACT_DIR,
    FIGURE_HTML,
    FIGURE_JSON,
    HISTORY_ARTIFACT,
    MODEL,
    MODEL_ARTIFACT_DIR,
    TAG_ANALYSIS,
    TAG_ARTIFACTS,
    TAG_EVALUATION,
    TAG_FIGURE_KIND,
    TAG_FIGURE_VERSION,
    TAG_HASH,
    TAG_LABEL,
    TAG_MODEL_PREFIX,
    TAG_MODELS,
    TAG_PARENT_RUN,
    TAG_RECORD,
    TAG_SOURCES,
    AmbiguousQueryError,
    Record,
    RecordNotFoundError,
)

if TYPE_CHECKING:
    import plotly.graph_objects as go

PAGE_SIZE = 1000  # search_runs page size
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAG_VALUE = 8000  # MLflow's tag value length limit
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"  # what the MLflow UI shows first
RUN_NAME_MAX_PARAMS = 4  # a figure's run name lists its params when it has this many or fewer
HISTORY_COLUMNS = ("step", "replicate", "term", "value")
_SAFE_HASH = re.compile(r"^[A-Za-z0-9_.\-]+$")
_FINISHED = "FINISHED"
_LOOKUP_BY_HASH_MAX = 25  # above this many hashes, scan all models once instead
STAGING = ".staging"  # large artifacts being written, beside the experiment's artifacts
CHECKPOINTS = ".checkpoints"  # training state of unfinished models (<hash>.eqx), beside them


def _quote(value: str) -> str:
    """Quote a string literal for an MLflow search filter."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ValueError(f"cannot search for a value containing both quote kinds: {value!r}")


def _check_hash(hash: str, what: str = "hash") -> str:
    if not isinstance(hash, str) or not _SAFE_HASH.match(hash):
        raise ValueError(f"{what} must be a non-empty string of [A-Za-z0-9_.-], got {hash!r}")
    return hash


def _replicate_str(replicate: Any) -> str:
    try:
        x = float(replicate)
    except (TypeError, ValueError):
        return sanitize_metric_name(str(replicate))
    return str(int(x)) if math.isfinite(x) and x == int(x) else sanitize_metric_name(str(replicate))


def local_path(uri: str | None) -> Path | None:
    """The local folder of a `file:` (or plain path) artifact URI; None for remote stores."""
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "":
        return Path(uri)
    return None


def _default_artifact_location(tracking_uri: str, experiment: str) -> str | None:
    """For a sqlite tracking URI: ``<folder of the db>/<experiment>`` (i.e. beside mlflow.db).

    MLflow's own default is ``./mlruns`` relative to the working directory, which scatters
    artifacts when commands run from different folders. Other backends: MLflow decides.
    """
    parsed = urlparse(tracking_uri)
    if parsed.scheme != "sqlite":
        return None
    db = unquote(tracking_uri[len("sqlite:///") :]) if tracking_uri.startswith("sqlite:///") else ""
    if not db or db == ":memory:":
        return None
    folder = re.sub(r"[^A-Za-z0-9_.\-]", "_", experiment) or "experiment"
    return (Path(db).resolve().parent / folder).as_uri()


class RecordStore:
    """Models, evaluations and figures recorded as MLflow runs of one experiment."""

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment: str = "ntdyn",
        *,
        artifact_location: str | None = None,
        claim_policy: ClaimPolicy | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri or mlflow.get_tracking_uri()
        initialise_store(self.tracking_uri)  # a fresh sqlite store: created once, under a lock
        self.experiment = experiment
        self.client = mlflow.MlflowClient(tracking_uri=self.tracking_uri)
        self.experiment_id = self._ensure_experiment(experiment, artifact_location)
        # who computes which hash now (see `claims`): one record per hash, however many runs
        self.claims = Claims(self.client, self.experiment_id, self.tracking_uri, claim_policy)
        self._assets: dict[str, Record] = {}  # asset runs found or recorded, by hash
        # the run new records are children of where no fluent run is active (a Dask worker)
        self.parent_run_id: str | None = None

    def __reduce__(self):
        # Sent to a Dask worker as what it is made of (the client holds connections): the
        # worker opens the same store, and its records are children of the run active here.
        active = mlflow.active_run()
        parent = active.info.run_id if active is not None else self.parent_run_id
        return (_reopen, (self.tracking_uri, self.experiment, self.claims.policy, parent))

    def __repr__(self) -> str:
        return f"RecordStore({self.tracking_uri!r}, experiment={self.experiment!r})"

    def _ensure_experiment(self, name: str, artifact_location: str | None) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp is None:
            location = artifact_location or _default_artifact_location(self.tracking_uri, name)
            try:
                return self.client.create_experiment(
                    name, artifact_location=location,
                    tags={TAG_EXPERIMENT_KIND: "custom_model_development"},
                )  # fmt: skip
            except MlflowException:  # created concurrently by another process
                exp = self.client.get_experiment_by_name(name)
                if exp is None:
                    raise
        if exp.lifecycle_stage == "deleted":
            self.client.restore_experiment(exp.experiment_id)
        if TAG_EXPERIMENT_KIND not in exp.tags:
            # The MLflow UI otherwise may open it as a GenAI experiment (traces, not runs).
            self.client.set_experiment_tag(exp.experiment_id, TAG_EXPERIMENT_KIND,
                                           "custom_model_development")  # fmt: skip
        return exp.experiment_id

    # ------------------------------------------------------------------------- internals

    def _to_record(self, run: Run) -> Record:
        tags = dict(run.data.tags)
        return Record(
            kind=tags.get(TAG_RECORD, ""),
            hash=tags.get(TAG_HASH, ""),
            run_id=run.info.run_id,
            params=dict(run.data.params),
            tags=tags,
            artifact_uri=run.info.artifact_uri,
        )

    def get_record(self, run_id: str) -> Record:
        return self._to_record(self.client.get_run(run_id))

    def _search(self, kind: str, *conditions: str) -> list[Record]:
        """All FINISHED, non-deleted records of ``kind`` (oldest first, one per hash)."""
        filter_string = " AND ".join(
            [f'tags."{TAG_RECORD}" = {_quote(kind)}', f"attributes.status = '{_FINISHED}'"]
            + list(conditions)
        )
        records: list[Record] = []
        seen: set[str] = set()
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id],
                filter_string=filter_string,
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=PAGE_SIZE,
                order_by=["attributes.start_time ASC"],
                page_token=token,
            )
            for run in page:
                record = self._to_record(run)
                if record.hash not in seen:  # duplicates (e.g. from a race): oldest wins
                    seen.add(record.hash)
                    records.append(record)
            token = page.token
            if not token:
                return records

    def _find(self, kind: str, hash: str) -> Record | None:
        found = self._search(kind, f'tags."{TAG_HASH}" = {_quote(hash)}')
        return found[0] if found else None

    def _query(self, kind: str, where: Mapping[str, Any], *conditions: str) -> list[Record]:
        return [r for r in self._search(kind, *conditions) if params_match(r.params, where)]

    def _find_unique(self, kind: str, where: Mapping[str, Any], *conditions: str) -> Record:
        candidates = self._search(kind, *conditions)
        matches = [r for r in candidates if params_match(r.params, where)]
        if not matches:
            raise RecordNotFoundError(
                not_found_message(kind, where, [r.params for r in candidates])
            )
        if len(matches) > 1:
            differing = varying_params([r.params for r in matches], include_unset=True)
            message = ambiguous_message(
                kind, where, len(matches), differing, [r.hash for r in matches]
            )
            raise AmbiguousQueryError(message, matches, differing)
        return matches[0]

    @contextmanager
    def _new_run(
        self,
        kind: str,
        hash: str,
        run_name: str,
        params: Mapping[str, Any],
        tags: Mapping[str, Any],
        *,
        child: bool = True,
    ) -> Iterator[str]:
        """Create a record run (child of the active fluent run, if any and `child`) and
        finish it.

        The run is marked FINISHED only when the body completes, FAILED otherwise, so a
        half-written record is never found by queries.
        """
        all_tags = {str(k): str(v) for k, v in tags.items()}
        all_tags[TAG_RECORD] = kind
        all_tags[TAG_HASH] = hash
        all_tags[TAG_PROCESS] = this_process()  # a run left RUNNING by a dead process is found
        active = mlflow.active_run() if child else None
        parent = active.info.run_id if active is not None else self.parent_run_id
        if child and parent is not None:
            all_tags[TAG_PARENT_RUN] = parent
        run = self.client.create_run(self.experiment_id, tags=all_tags, run_name=run_name)
        run_id = run.info.run_id
        try:
            items = [Param(k, v) for k, v in params_to_str(params).items()]
            for i in range(0, len(items), MAX_PARAMS_PER_BATCH):
                self.client.log_batch(run_id, params=items[i : i + MAX_PARAMS_PER_BATCH])
            yield run_id
        except BaseException:
            self.client.set_terminated(run_id, "FAILED")
            raise
        self.client.set_terminated(run_id, _FINISHED)

    def _log_metrics(self, run_id: str, metrics: Sequence[Metric]) -> None:
        for i in range(0, len(metrics), MAX_METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=list(metrics[i : i + MAX_METRICS_PER_BATCH]))

    def _log_paths(self, run_id: str, paths: Sequence[str | Path], *, move: bool = False) -> None:
        """Log files and folders as artifacts. move: the record takes them (they are moved,
        a rename on a local artifact store, else uploaded and deleted), so they exist once."""
        local = local_path(self.client.get_run(run_id).info.artifact_uri) if move else None
        for p in map(Path, paths):
            if local is not None:
                local.mkdir(parents=True, exist_ok=True)
                shutil.move(str(p), str(local / p.name))
                continue
            if p.is_dir():
                self.client.log_artifacts(run_id, str(p), artifact_path=p.name)
            else:
                self.client.log_artifact(run_id, str(p))
            if move:
                shutil.rmtree(p) if p.is_dir() else p.unlink()

    def staging_dir(self) -> Path:
        """Where large artifacts are written before their record takes them: beside the
        artifacts on a local store (so taking them is a rename), else the temporary folder."""
        location = self.client.get_experiment(self.experiment_id).artifact_location
        local = local_path(location)
        folder = (local / STAGING) if local is not None else Path(tempfile.gettempdir()) / STAGING
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def checkpoint_dir(self) -> Path:
        """Where training checkpoints live (`<model hash>.eqx`): beside the artifacts on a local
        store, so every run of the project sharing this store finds them after a crash (and
        `kedro ntdyn gc` lists those whose model is recorded); else the temporary folder."""
        location = self.client.get_experiment(self.experiment_id).artifact_location
        local = local_path(location)
        root = local if local is not None else Path(tempfile.gettempdir())
        return root / CHECKPOINTS

    @staticmethod
    def _check_paths(paths: Sequence[str | Path]) -> None:
        missing = [str(p) for p in paths if not Path(p).exists()]
        if missing:
            raise FileNotFoundError(f"artifact(s) not found: {', '.join(missing)}")

    def _download(self, record: Record, artifact_path: str, dst_dir: str | Path | None) -> Path:
        if dst_dir is None:
            # a local artifact store: the stored copy itself (MLflow would copy it to a
            # temporary folder, which for an evaluation's arrays means gigabytes)
            local = local_path(self.client.get_run(record.run_id).info.artifact_uri)
            if local is not None and (local / artifact_path).exists():
                return local / artifact_path
        dst = None
        if dst_dir is not None:
            Path(dst_dir).mkdir(parents=True, exist_ok=True)
            dst = str(dst_dir)
        local = mlflow.artifacts.download_artifacts(
            run_id=record.run_id,
            artifact_path=artifact_path,
            dst_path=dst,
            tracking_uri=self.tracking_uri,
        )
        return Path(local)

    # ------------------------------------------------------------------------- models

    def find_model(self, hash: str) -> Record | None:
        return self._find(MODEL, hash)

    def record_model(
        self,
        *,
        hash: str,
        params: Mapping[str, Any],
        history: pd.DataFrame,
        model_file: str | Path,
        run_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        extra_artifacts: Sequence[str | Path] = (),
        metric_every: int = 1,
    ) -> Record:
        """Record a trained model (always a new run; check ``find_model`` first).

        ``history`` is a long table (step, replicate, term, value); each term is logged as the
        step metrics ``<term>/replicate_<r>`` and ``<term>/mean`` (mean over replicates) at every
        ``metric_every``-th step (metrics are slow to write), and the whole table as the
        artifact ``history.parquet``.
        """
        if metric_every < 1:
            raise ValueError(f"metric_every = {metric_every}: must be an integer >= 1")
        missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
        if missing:
            raise ValueError(
                f"history lacks column(s) {missing}; expected columns {list(HISTORY_COLUMNS)}"
            )
        model_file = Path(model_file)
        if not model_file.is_file():
            raise FileNotFoundError(f"model file not found: {model_file}")
        self._check_paths(extra_artifacts)
        tags = dict(tags or {})
        if run_name is None:
            run_name = f"model {tags.get(TAG_LABEL) or hash[:12]}"

        with self._new_run(MODEL, hash, run_name, params, tags) as run_id:
            thinned = history[history["step"] % metric_every == 0]
            self._log_metrics(run_id, _history_metrics(thinned))
            self.client.log_artifact(run_id, str(model_file), artifact_path=MODEL_ARTIFACT_DIR)
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / HISTORY_ARTIFACT
                history.to_parquet(path, index=False)
                self.client.log_artifact(run_id, str(path))
            self._log_paths(run_id, extra_artifacts)
        return self.get_record(run_id)

    def download_model_file(self, record: Record, dst_dir: str | Path | None = None) -> Path:
        """Local path of the model file (the single file under artifact path ``model``).

        Without ``dst_dir`` and with a local artifact store this is the stored file itself:
        read it, don't modify it.
        """
        files = [
            f for f in self.client.list_artifacts(record.run_id, MODEL_ARTIFACT_DIR) if not f.is_dir
        ]
        if len(files) > 1:
            eqx = [f for f in files if f.path.endswith(".eqx")]
            files = eqx if len(eqx) == 1 else files
        if len(files) != 1:
            found = ", ".join(f.path for f in files) or "nothing"
            raise RecordNotFoundError(
                f"expected one file under artifact path {MODEL_ARTIFACT_DIR!r} of run "
                f"{record.run_id} (model {record.hash}), found {found}"
            )
        return self._download(record, files[0].path, dst_dir)

    def download_artifact(
        self, record: Record, artifact_path: str, dst_dir: str | Path | None = None
    ) -> Path:
        """Local path of one artifact (file or folder) of a record.

        Without ``dst_dir`` and with a local artifact store this is the stored copy itself:
        read it, don't modify it.
        """
        return self._download(record, artifact_path, dst_dir)

    def download_history(self, record: Record) -> pd.DataFrame:
        """The full training history table (step, replicate, term, value) of a model record."""
        with tempfile.TemporaryDirectory() as tmp:
            return pd.read_parquet(self._download(record, HISTORY_ARTIFACT, tmp))

    def query_models(self, **where: Any) -> list[Record]:
        return self._query(MODEL, where)

    def find_unique_model(self, **where: Any) -> Record:
        return self._find_unique(MODEL, where)

    # ------------------------------------------------------------------------- evaluations

    def find_evaluation(self, hash: str) -> Record | None:
        return self._find(EVALUATION, hash)

    def record_evaluation(
        self,
        *,
        hash: str,
        analysis: str,
        params: Mapping[str, Any],
        model_hashes: Sequence[str],
        metrics: Mapping[str, float],
        artifacts: Sequence[str | Path] = (),
        run_name: str | None = None,
        move_artifacts: bool = False,
    ) -> Record:
        """Record an evaluation of one or more models (always a new run).

        move_artifacts: the record takes the artifacts (moved, not copied: stored once)."""
        if isinstance(model_hashes, str):
            model_hashes = [model_hashes]
        hashes = sorted({_check_hash(h, "model hash") for h in model_hashes})
        self._check_paths(artifacts)
        joined = ",".join(hashes)
        if len(joined) > MAX_TAG_VALUE:
            joined = f"<{len(hashes)} models: see the {TAG_MODEL_PREFIX}<hash> tags>"
        tags = {TAG_ANALYSIS: analysis, TAG_MODELS: joined}
        names = ",".join(Path(p).name for p in artifacts)
        if names and len(names) <= MAX_TAG_VALUE:  # what `gc` checks is still on disk
            tags[TAG_ARTIFACTS] = names
        tags.update({f"{TAG_MODEL_PREFIX}{h}": "1" for h in hashes})
        if run_name is None:
            run_name = f"evaluation {analysis} {hash[:12]}"

        with self._new_run(EVALUATION, hash, run_name, params, tags) as run_id:
            now = int(time.time() * 1000)
            self._log_metrics(
                run_id,
                [Metric(sanitize_metric_name(k), float(v), now, 0) for k, v in metrics.items()],
            )
            self._log_paths(run_id, artifacts, move=move_artifacts)
        return self.get_record(run_id)

    def query_evaluations(self, analysis: str | None = None, **where: Any) -> list[Record]:
        conditions = [] if analysis is None else [f'tags."{TAG_ANALYSIS}" = {_quote(analysis)}']
        return self._query(EVALUATION, where, *conditions)

    def evaluations_of_model(self, model_hash: str) -> list[Record]:
        tag = f"{TAG_MODEL_PREFIX}{_check_hash(model_hash, 'model hash')}"
        return self._search(EVALUATION, f"tags.\"{tag}\" = '1'")

    def models_of_evaluation(self, evaluation: Record) -> list[Record]:
        """The model records an evaluation links to (in hash order; missing ones skipped)."""
        hashes = evaluation.model_hashes
        if len(hashes) <= _LOOKUP_BY_HASH_MAX:
            found = (self.find_model(h) for h in hashes)
            return [r for r in found if r is not None]
        by_hash = {r.hash: r for r in self._search(MODEL)}
        return [by_hash[h] for h in hashes if h in by_hash]

    # ------------------------------------------------------------------------- assets

    def plotly_asset(self) -> Record:
        """The run holding the installed plotly's plotly.js bundle, recorded on first use.

        One run per store and plotly.js version (found again by its hash, never recorded
        twice; a concurrent recorder's duplicate loses to the oldest), not a child of any
        kedro run: every figure's HTML loads plotly.js from it (see `assets`).
        """
        version = plotly_js_version()
        hash = plotly_asset_hash(version)
        cached = self._assets.get(hash)
        if cached is not None:
            return cached

        def record_bundle(_: list[str]) -> dict[str, Record]:
            path = plotly_asset_path(version)
            tags = {TAG_ASSET: PLOTLY_JS, TAG_PLOTLY_JS_VERSION: version,
                    TAG_PLOTLY_VERSION: plotly_version(), TAG_ARTIFACTS: path}  # fmt: skip
            folder, name = path.rsplit("/", 1)
            with tempfile.TemporaryDirectory() as tmp:
                bundle = write_plotly_js(Path(tmp) / name)
                with self._new_run(ASSET, hash, ASSET_RUN_NAME, {}, tags, child=False) as run_id:
                    self.client.log_artifact(run_id, str(bundle), artifact_path=folder)
            return {hash: self.get_record(run_id)}

        find = partial(self._find, ASSET)
        [(record, _)] = compute_once(
            self, ASSET, [hash], find, record_bundle, reused_message=None
        ).values()
        self._assets[hash] = record
        return record

    # ------------------------------------------------------------------------- figures

    def find_figure(self, hash: str) -> Record | None:
        return self._find(FIGURE, hash)

    def record_figure(
        self,
        *,
        kind: str,
        figure: go.Figure,
        params: Mapping[str, Any],
        evaluation_hash: str | None,
        sources: Sequence[str] = (),
        version: str | None = None,
        run_name: str | None = None,
    ) -> Record:
        """Record a plotly figure; if the same figure is already recorded, return that record
        unchanged (never overwrite). See `find_or_record_figure`."""
        return self.find_or_record_figure(
            kind=kind, figure=figure, params=params, evaluation_hash=evaluation_hash,
            sources=sources, version=version, run_name=run_name,
        )[0]  # fmt: skip

    def find_or_record_figure(
        self,
        *,
        kind: str,
        figure: go.Figure | Callable[[], go.Figure],
        params: Mapping[str, Any],
        evaluation_hash: str | None,
        sources: Sequence[str] = (),
        version: str | None = None,
        run_name: str | None = None,
    ) -> tuple[Record, bool]:
        """(record, created): the figure's record, made now (True) or found (False).

        The figure's identity (`query.figure_hash`) is its kind, its params, the record it is
        drawn from (`evaluation_hash`), the other records it draws on (`sources`) and the
        figure code's `version`. `figure` may be a loader (called only to record a new one).
        """
        hash = figure_hash(kind, params, evaluation_hash, sources=sources, version=version)
        tags = {TAG_FIGURE_KIND: kind}
        if evaluation_hash is not None:
            tags[TAG_EVALUATION] = evaluation_hash
        others = ",".join(sorted(set(sources) - {evaluation_hash}))
        if others and len(others) <= MAX_TAG_VALUE:
            tags[TAG_SOURCES] = others
        if version is not None:
            tags[TAG_FIGURE_VERSION] = str(version)
        if run_name is None:  # e.g. "figure center_out train__pert__std=1.5 · 93346249"
            shown = params_to_str(params)
            values = ", ".join(f"{k}={v}" for k, v in sorted(shown.items()))
            if not shown or len(shown) > RUN_NAME_MAX_PARAMS:
                values = ""
            run_name = " ".join(filter(None, ["figure", kind, values, f"· {hash[:8]}"]))

        def draw_and_record(_: list[str]) -> dict[str, Record]:
            drawn = figure() if callable(figure) else figure
            asset = self.plotly_asset()
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / FIGURE_JSON).write_text(drawn.to_json(), encoding="utf-8")
                # plotly.js from the asset run, through the MLflow server (else the CDN)
                html = figure_html(drawn, asset.run_id, asset.tags[TAG_PLOTLY_JS_VERSION])
                (Path(tmp) / FIGURE_HTML).write_text(html, encoding="utf-8")
                with self._new_run(FIGURE, hash, run_name, params, tags) as run_id:
                    self.client.log_artifacts(run_id, tmp, artifact_path=FIGURE_ARTIFACT_DIR)
            return {hash: self.get_record(run_id)}

        found = compute_once(self, FIGURE, [hash], self.find_figure, draw_and_record,
                             reused_message=None)  # fmt: skip
        [(record, status)] = found.values()
        return record, status == RECORDED

    def query_figures(self, kind: str | None = None, **where: Any) -> list[Record]:
        conditions = [] if kind is None else [f'tags."{TAG_FIGURE_KIND}" = {_quote(kind)}']
        return self._query(FIGURE, where, *conditions)

    def load_figure(self, record: Record) -> go.Figure:
        import plotly.io as pio

        with tempfile.TemporaryDirectory() as tmp:
            path = self._download(record, f"{FIGURE_ARTIFACT_DIR}/{FIGURE_JSON}", tmp)
            return pio.from_json(path.read_text(encoding="utf-8"))

    # ------------------------------------------------------------------------- helpers

    def varying_params(self, records: Sequence[Record]) -> dict[str, list[str]]:
        """Params taking more than one value among ``records``, with sorted distinct values."""
        return varying_params([r.params for r in records])


def _history_metrics(history: pd.DataFrame) -> list[Metric]:
    """Long history -> per-replicate and mean step metrics."""
    if history.empty:
        return []
    now = int(time.time() * 1000)
    terms = {t: sanitize_metric_name(str(t)) for t in history["term"].unique()}
    reps = {r: _replicate_str(r) for r in history["replicate"].unique()}
    metrics = [
        Metric(f"{terms[t]}/replicate_{reps[r]}", float(v), now, int(s))
        for s, r, t, v in zip(
            history["step"], history["replicate"], history["term"], history["value"], strict=True
        )
    ]
    means = history.groupby(["term", "step"], sort=True)["value"].mean()
    metrics.extend(Metric(f"{terms[t]}/mean", float(v), now, int(s)) for (t, s), v in means.items())
    return metrics


def _reopen(tracking_uri: str, experiment: str, policy: ClaimPolicy,
            parent_run_id: str | None) -> RecordStore:  # fmt: skip
    """A `RecordStore` unpickled (on a Dask worker): the same store, the same parent run."""
    store = RecordStore(tracking_uri, experiment, claim_policy=policy)
    store.parent_run_id = store.claims.parent_run_id = parent_run_id
    return store
