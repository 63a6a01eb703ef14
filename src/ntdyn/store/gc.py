"""Find and archive what the record store and the files on disk disagree about.

Leftovers (``kedro ntdyn gc`` lists them; ``--apply`` archives them):

- **runs left RUNNING by a process that is gone** (killed, out of memory): ended as KILLED,
  tagged with the process (see `processes`); every `kedro run` does the same when it starts.

- **files whose record is gone**: a run's artifact folder under the experiment's artifact
  root when the run no longer exists, was deleted, or failed half-way (FAILED or KILLED:
  queries never return it); and a local model file ``<models dir>/**/<hash>.eqx`` (named
  by a 16-digit model hash) whose hash has no model record; and an evaluation's arrays
  staged beside the artifacts (``.staging/<hash>-<pid>-<id>``) by a process that is gone
  (killed before its record took them; a live process's are left alone); a training
  checkpoint (``.checkpoints/<hash>.eqx``) whose model has a finished record (the record
  holds the model; the checkpoint is normally removed then, but a run killed in between
  leaves it), and a checkpoint's temporary file (``<hash>.eqx.tmp-<pid>``) whose writing
  process is gone. A checkpoint of an unfinished model is kept: the next run resumes from
  it. Archiving moves
  them under the archive folder, keeping their relative path; nothing is deleted.
- **run folders no run will publish** (``data/runs/<run id>``, see `ntdyn.run_folder`): the
  outputs of a run that failed or whose process is gone; archived like the files above. A
  live run's folder is left alone.
- **records whose file is gone**: a finished record whose files are missing (a model
  without its model file or history, a figure without its JSON, an evaluation without one
  of the artifacts it listed, the plotly.js asset run without its bundle). Archiving
  soft-deletes the run in MLflow, tagged with the reason, and moves what is left of its
  files to the archive: queries stop returning it (so the next ``kedro run`` recomputes
  it, or the next figure records the asset anew), and ``mlflow runs restore --run-id``
  brings it back.

The plotly.js asset run (``ntdyn-assets``, see `assets`) is a record like the others: kept
while its bundle is there (figures load plotly.js from it). Runs still RUNNING are left
alone. Only local (``file:``) artifact stores are inspected.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.entities import ViewType

from .assets import ASSET
from .mlflow_store import CHECKPOINTS, STAGING, local_path
from .processes import TAG_PROCESS, abandoned_runs, mark_abandoned
from .records import (
    EVALUATION,
    FIGURE,
    FIGURE_ARTIFACT_DIR,
    FIGURE_JSON,
    HISTORY_ARTIFACT,
    MODEL,
    MODEL_ARTIFACT_DIR,
    TAG_ARTIFACTS,
    TAG_HASH,
    TAG_RECORD,
    Record,
)

TAG_ARCHIVED = "ntdyn.archived"  # why gc archived a record
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_MODEL_HASH = re.compile(r"^[0-9a-f]{16}$")
_GONE_STATUSES = ("FAILED", "KILLED")


@dataclass(frozen=True)
class OrphanFile:
    """A file or folder on disk with no record behind it."""

    path: Path
    reason: str


@dataclass(frozen=True)
class MissingFiles:
    """A record whose files are (partly) gone."""

    record: Record
    missing: tuple[str, ...]  # artifact paths, relative to the run's artifact root


@dataclass
class GcReport:
    orphan_files: list[OrphanFile] = field(default_factory=list)
    records_without_files: list[MissingFiles] = field(default_factory=list)
    abandoned_runs: list = field(default_factory=list)  # RUNNING runs of a dead process

    @property
    def empty(self) -> bool:
        return not (self.orphan_files or self.records_without_files or self.abandoned_runs)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _staged_leftovers(root: Path) -> list[OrphanFile]:
    """Staged evaluations (`.staging/<hash>-<pid>-<id>`) whose writing process is gone: a
    run killed before the record took them. Those of a live process are being written."""
    out = []
    staging = root / STAGING
    for folder in sorted(staging.iterdir()) if staging.is_dir() else []:
        parts = folder.name.split("-")
        pid = int(parts[1]) if len(parts) >= 3 and parts[1].isdigit() else None
        if pid is None or not _process_alive(pid):
            out.append(OrphanFile(folder, f"staged by process {pid}, which is gone (no record)"))
    return out


def _checkpoint_leftovers(folder: Path, recorded: set[str]) -> list[OrphanFile]:
    """Checkpoints of recorded models, and temporary files of writers that are gone."""
    out = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        stem, _, tmp = path.name.partition(".eqx.tmp-")
        if tmp:
            if not (tmp.isdigit() and _process_alive(int(tmp))):
                out.append(OrphanFile(path, f"checkpoint being written by process {tmp}, "
                                            "which is gone"))  # fmt: skip
        elif path.suffix == ".eqx" and path.stem in recorded:
            out.append(OrphanFile(path, "checkpoint of a model that is recorded"))
    return out


def _all_runs(store) -> dict[str, object]:
    """Every run of the store's experiment, deleted ones included, by run id."""
    runs, token = {}, None
    while True:
        page = store.client.search_runs([store.experiment_id], run_view_type=ViewType.ALL,
                                        max_results=1000, page_token=token)  # fmt: skip
        runs.update({r.info.run_id: r for r in page})
        token = page.token
        if not token:
            return runs


def required_artifacts(record: Record) -> tuple[str, ...]:
    """The artifact paths a record cannot do without."""
    if record.kind == MODEL:
        return (MODEL_ARTIFACT_DIR, HISTORY_ARTIFACT)
    if record.kind == FIGURE:
        return (f"{FIGURE_ARTIFACT_DIR}/{FIGURE_JSON}",)
    if record.kind in (EVALUATION, ASSET):  # the artifacts it listed when recorded
        return tuple(a for a in record.tags.get(TAG_ARTIFACTS, "").split(",") if a)
    return ()


def _present(root: Path, artifact: str) -> bool:
    path = root / artifact
    return path.is_file() or (path.is_dir() and any(p.is_file() for p in path.rglob("*")))


def find_leftovers(store, models_dir: str | Path | None = None,
                   runs_dir: str | Path | None = None) -> GcReport:  # fmt: skip
    """What `archive` would archive (see the module docstring); changes nothing."""
    report = GcReport(abandoned_runs=abandoned_runs(store.client, store.experiment_id))
    runs = _all_runs(store)
    experiment = store.client.get_experiment(store.experiment_id)
    root = local_path(experiment.artifact_location)
    if root is not None and root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and _RUN_ID.match(p.name)):
            run = runs.get(folder.name)
            if run is None:
                report.orphan_files.append(OrphanFile(folder, "run not in the store"))
            elif run.info.lifecycle_stage == "deleted":
                report.orphan_files.append(OrphanFile(folder, "run deleted"))
            elif run.info.status in _GONE_STATUSES:
                report.orphan_files.append(OrphanFile(folder, f"run {run.info.status}"))
        report.orphan_files.extend(_staged_leftovers(root))

    live = {
        run_id: store._to_record(run)
        for run_id, run in runs.items()
        if run.info.lifecycle_stage == "active" and run.info.status == "FINISHED"
        and run.data.tags.get(TAG_RECORD)
    }  # fmt: skip
    for record in live.values():
        artifacts = local_path(record.artifact_uri)
        if artifacts is None:
            continue
        missing = tuple(a for a in required_artifacts(record) if not _present(artifacts, a))
        if missing:
            report.records_without_files.append(MissingFiles(record, missing))

    model_hashes = {r.hash for r in live.values() if r.kind == MODEL}
    if root is not None:
        report.orphan_files.extend(_checkpoint_leftovers(root / CHECKPOINTS, model_hashes))
    if models_dir is not None:
        # only files named by a model hash (the training outputs); others are named by role
        for path in sorted(Path(models_dir).rglob("*.eqx")):
            if _MODEL_HASH.match(path.stem) and path.stem not in model_hashes:
                report.orphan_files.append(OrphanFile(path, "no model record with this hash"))
    if runs_dir is not None:
        from ntdyn.run_folder import leftovers

        report.orphan_files += [OrphanFile(p, why) for p, why in leftovers(Path(runs_dir))]
    return report


def archive(store, report: GcReport, archive_dir: str | Path,
            project: str | Path | None = None) -> Path:  # fmt: skip
    """Move the orphan files under `archive_dir/<time>/` (by their path relative to
    `project`, the working directory by default) and soft-delete the records without
    files (tagged with what was missing). Returns the folder files went to."""
    target = Path(archive_dir) / time.strftime("%Y%m%d-%H%M%S")

    def move(path: Path) -> None:
        path = path.resolve()
        try:  # keep the path relative to the project
            relative = path.relative_to(Path(project or Path.cwd()).resolve())
        except ValueError:
            relative = Path(*path.parts[1:])
        dst = target / relative
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), dst)

    mark_abandoned(store.client, report.abandoned_runs)
    for orphan in report.orphan_files:
        move(orphan.path)
    for item in report.records_without_files:
        store.client.set_tag(item.record.run_id, TAG_ARCHIVED,
                             f"gc: missing {', '.join(item.missing)}")  # fmt: skip
        store.client.delete_run(item.record.run_id)
        # what is left of its files goes with it (else the next gc finds them orphaned)
        artifacts = local_path(item.record.artifact_uri)
        if artifacts is not None and artifacts.parent.name == item.record.run_id:
            if artifacts.parent.exists():
                move(artifacts.parent)
    return target


def describe(report: GcReport) -> list[str]:
    """One line per leftover, for the command line."""
    lines = [
        f"run left RUNNING by a process that is gone: {r.info.run_name} run {r.info.run_id} "
        f"({r.data.tags.get(TAG_PROCESS)})"
        for r in report.abandoned_runs
    ]
    lines += [f"file without record: {o.path}  ({o.reason})" for o in report.orphan_files]
    lines += [
        f"record without file: {m.record.kind} {m.record.tags.get(TAG_HASH, '')} "
        f"run {m.record.run_id}  (missing {', '.join(m.missing)})"
        for m in report.records_without_files
    ]
    return lines
