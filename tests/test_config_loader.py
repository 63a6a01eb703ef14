"""mlflow.yml's relative sqlite URI resolves against the project, from any working folder."""

from __future__ import annotations

from pathlib import Path

import yaml

from ntdyn.config_loader import ProjectConfigLoader, project_sqlite_uri, project_tracking_uri


def test_relative_sqlite_uris_become_project_absolute_and_others_stay():
    project = Path("/labs/ntdyn")
    assert project_sqlite_uri("sqlite:///mlruns/mlflow.db", project) == (
        "sqlite:////labs/ntdyn/mlruns/mlflow.db"
    )
    for unchanged in ("sqlite:////abs/mlflow.db", "sqlite:///:memory:", "http://mlflow:5000",
                      "postgresql://u@h/db", None, ""):  # fmt: skip
        assert project_sqlite_uri(unchanged, project) == unchanged


def test_the_loader_reads_mlflow_yml_against_the_project_not_the_cwd(tmp_path, monkeypatch):
    base = tmp_path / "conf" / "base"
    base.mkdir(parents=True)
    (tmp_path / "conf" / "local").mkdir()
    server = {"mlflow_tracking_uri": "sqlite:///mlruns/mlflow.db", "mlflow_registry_uri": None}
    (base / "mlflow.yml").write_text(yaml.safe_dump({"server": server}))
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    loader = ProjectConfigLoader(conf_source=str(tmp_path / "conf"), base_env="base",
                                 default_run_env="local")  # fmt: skip
    expected = f"sqlite:///{tmp_path.resolve().as_posix()}/mlruns/mlflow.db"
    assert loader["mlflow"]["server"]["mlflow_tracking_uri"] == expected
    assert loader["mlflow"]["server"]["mlflow_registry_uri"] is None
    assert project_tracking_uri(tmp_path) == expected
    # a lab's server in conf/local wins, unchanged
    local = {"server": {"mlflow_tracking_uri": "http://tracking.lab:5000"}}
    (tmp_path / "conf" / "local" / "mlflow.yml").write_text(yaml.safe_dump(local))
    assert project_tracking_uri(tmp_path) == "http://tracking.lab:5000"


def _loader(conf: Path, runtime_params: dict | None = None) -> ProjectConfigLoader:
    return ProjectConfigLoader(
        conf_source=str(conf), base_env="base", default_run_env="local",
        runtime_params=runtime_params, merge_strategy={"parameters": "soft", "globals": "soft"},
    )  # fmt: skip


def test_a_runtime_parameter_changes_only_the_experiment_it_names(tmp_path):
    # Kedro merges --params before it resolves `${globals:...}`: the shared block was then
    # modified in place, and every experiment built from it got the override.
    base = tmp_path / "conf" / "base"
    base.mkdir(parents=True)
    (tmp_path / "conf" / "local").mkdir()
    (base / "globals.yml").write_text(yaml.safe_dump({"reaching": {"train": {"lr": 0.1}}}))
    shared = {"training": {"hyperparams": "${globals:reaching}"}}
    (base / "parameters.yml").write_text(yaml.safe_dump({"part1": shared, "part2": shared}))
    override = {"part1": {"training": {"hyperparams": {"train": {"lr": 0.5}}}}}
    params = _loader(tmp_path / "conf", override)["parameters"]
    assert params["part1"]["training"]["hyperparams"]["train"]["lr"] == 0.5
    assert params["part2"]["training"]["hyperparams"]["train"]["lr"] == 0.1
    # an override of a new key still arrives (the parameter check refuses unknown ones)
    params = _loader(tmp_path / "conf", {"part2": {"extra": 1}})["parameters"]
    assert params["part2"]["extra"] == 1
    assert _loader(tmp_path / "conf")["parameters"]["part1"]["training"]["hyperparams"] == {
        "train": {"lr": 0.1}
    }
