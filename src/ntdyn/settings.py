"""Kedro project settings."""

import os

# One bar per downloaded artifact drowns the training bar; nothing else here needs them.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

# kedro-mlflow registers its hooks through its entry point; telemetry stays off (no internet).
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-telemetry",)

from ntdyn.config_loader import ProjectConfigLoader  # noqa: E402

# OmegaConfigLoader, with mlflow.yml's relative sqlite URI read against the project folder
CONFIG_LOADER_CLASS = ProjectConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # conf/full overrides only the keys it names (research scale), the rest comes from base.
    "merge_strategy": {"parameters": "soft", "globals": "soft"},
    # dask.yml: the cluster of `kedro run --runner ntdyn.runners.DaskRunner`
    "config_patterns": {"dask": ["dask*", "dask*/**", "**/dask*"]},
}

from ntdyn.hooks import ResourceHooks, RunLifecycleHooks, RunSummaryHooks  # noqa: E402
from ntdyn.parameters.hook import ParameterHooks  # noqa: E402
from ntdyn.run_folder_hooks import RunFolderHooks  # noqa: E402
from ntdyn.runners import DaskConfHooks  # noqa: E402

# RunFolderHooks: a run's outputs are its own until it succeeds (concurrent runs stay apart).
# ParameterHooks last: of the tryfirst hooks, pluggy calls the last registered first, so the
# parameters are checked before anything (store, kedro-mlflow's run, nodes) is written.
HOOKS = (ResourceHooks(), RunLifecycleHooks(), RunSummaryHooks(), RunFolderHooks(),
         DaskConfHooks(), ParameterHooks())  # fmt: skip
