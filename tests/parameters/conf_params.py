"""The project's merged parameters per conf environment, read as a run reads them."""

from __future__ import annotations

from pathlib import Path

from ntdyn.config_loader import ProjectConfigLoader
from ntdyn.settings import CONFIG_LOADER_ARGS

REPO = Path(__file__).resolve().parents[2]


def conf_parameters(env: str | None = None) -> dict:
    """conf/base merged with conf/<env> (conf/local when env is None), as `kedro run`."""
    loader = ProjectConfigLoader(conf_source=str(REPO / "conf"), env=env, **CONFIG_LOADER_ARGS)
    return loader["parameters"]
