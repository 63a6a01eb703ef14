"""The project's config loader: Kedro's OmegaConfigLoader, with project-relative sqlite URIs
and run parameters applied after interpolation.

kedro-mlflow makes a relative *path* in mlflow.yml absolute against the project, but leaves
``sqlite:///mlruns/mlflow.db`` relative to the working directory: a notebook started in
``notebooks/`` or a command run from a subfolder would then open an empty store of its own.
Here such URIs resolve against the project folder (the parent of ``conf/``).
"""

from __future__ import annotations

from pathlib import Path

from kedro.config import OmegaConfigLoader
from omegaconf import OmegaConf

SQLITE = "sqlite:///"


def project_sqlite_uri(uri: str | None, project_path: Path) -> str | None:
    """``sqlite:///relative/db`` -> ``sqlite:////<project>/relative/db``; others unchanged."""
    if not uri or not uri.startswith(SQLITE):
        return uri
    path = uri[len(SQLITE) :]
    if path in ("", ":memory:") or Path(path).is_absolute():
        return uri
    return SQLITE + (project_path / path).as_posix()


class ProjectConfigLoader(OmegaConfigLoader):
    """OmegaConfigLoader whose `mlflow` config has its sqlite URIs made project-absolute."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # kedro-mlflow adds this pattern when a context starts; readers without one need it too
        self.config_patterns.setdefault("mlflow", ["mlflow*", "mlflow*/**", "**/mlflow*"])

    def _merge_and_resolve(self, key: str, config_per_file: dict) -> dict:
        # Kedro merges the run's --params into the parameters *before* resolving them, so an
        # override under `${globals:reaching}` was written into the shared globals node and
        # reached every experiment built from it. Resolve first, then apply the overrides to
        # the resolved copy: each override changes only the key it names.
        if key != "parameters" or not self.runtime_params or not config_per_file:
            return super()._merge_and_resolve(key, config_per_file)
        resolved = OmegaConf.to_container(
            OmegaConf.unsafe_merge(*config_per_file.values()), resolve=True
        )
        return OmegaConf.to_container(OmegaConf.merge(resolved, self.runtime_params), resolve=True)

    def __getitem__(self, key: str):
        config = super().__getitem__(key)
        if key == "mlflow" and isinstance(config.get("server"), dict):
            project = Path(self.conf_source).resolve().parent
            for name in ("mlflow_tracking_uri", "mlflow_registry_uri"):
                config["server"][name] = project_sqlite_uri(config["server"].get(name), project)
        return config


def project_tracking_uri(project_path: Path, env: str | None = None) -> str | None:
    """The tracking URI the project's mlflow.yml gives (conf/local over conf/base)."""
    from kedro.framework.project import settings

    loader = ProjectConfigLoader(conf_source=str(project_path / settings.CONF_SOURCE),
                                 env=env, **settings.CONFIG_LOADER_ARGS)  # fmt: skip
    try:
        return loader["mlflow"]["server"]["mlflow_tracking_uri"]
    except KeyError:
        return None
