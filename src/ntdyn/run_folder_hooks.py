"""Kedro hooks that give every `kedro run` its own folder for its outputs (see `run_folder`).

Before the pipeline runs, each file-backed output of the pipeline (a catalog entry with a
`filepath` or `path`) is re-created with its path moved into the run's folder; datasets the
pipeline only reads keep the usual paths. After a successful run the outputs are published to
the usual paths; after a failure the folder is marked failed (kept for a look, until gc).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

from kedro.framework.hooks import hook_impl
from kedro.io import AbstractDataset

from ntdyn.run_folder import FAILED, RUNS_DIR, RunFolder, private_path

log = logging.getLogger(__name__)

PATH_KEYS = ("filepath", "path")


class _Quiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Replacing dataset")


@contextmanager
def _no_replacing_warnings():
    """The catalog warns for every dataset replaced; here that is the point."""
    logger, quiet = logging.getLogger("kedro.io.data_catalog"), _Quiet()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


class RunFolderHooks:
    """Outputs of a run written under `data/runs/<run id>/`, published when it succeeds."""

    def __init__(self):
        self.folder: RunFolder | None = None
        self.outputs: dict[str, str] = {}  # private path -> usual path

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog):
        project = Path(run_params["project_path"])
        pipelines = list(run_params.get("pipeline_names") or ["__default__"])
        self.folder = RunFolder.start(project / RUNS_DIR, str(run_params["run_id"]), pipelines)
        self.outputs = {}
        save_version = run_params["run_id"]
        with _no_replacing_warnings():
            for name in sorted(pipeline.all_outputs()):
                # the catalog's entry (Kedro made its relative paths the project's)
                config = dict(catalog.config_resolver.resolve_pattern(name) or {})
                key = next((k for k in PATH_KEYS if isinstance(config.get(k), str)), None)
                private = key and private_path(config[key], self.folder.path, project)
                if not private:
                    continue
                self.outputs[private], config[key] = config[key], private
                catalog[name] = AbstractDataset.from_config(name, config, None, save_version)
        log.info("this run writes its outputs under %s; they are published when it succeeds",
                 self.folder.path)  # fmt: skip

    @hook_impl
    def after_pipeline_run(self, run_params, run_result, pipeline, catalog):
        if self.folder is not None:
            published = self.folder.publish(self.outputs)
            log.info("published %d output(s) of this run: %s", len(published),
                     ", ".join(published))  # fmt: skip
        self.folder = None

    @hook_impl
    def on_pipeline_error(self, error, run_params, pipeline, catalog):
        if self.folder is not None:
            self.folder.mark(FAILED, error=repr(error)[:2000])
            log.warning("this run failed: its outputs stay in %s (`kedro ntdyn gc` lists it)",
                        self.folder.path)  # fmt: skip
        self.folder = None
