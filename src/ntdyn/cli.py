"""`kedro ntdyn …`: query the records by hyperparameters from the command line.

    kedro ntdyn models --where train__pert__std=1.0 --where train__method=pai-asf
    kedro ntdyn evaluations --analysis plant_perts
    kedro ntdyn figures --kind center_out --where train__pert__std=1.0
    kedro ntdyn varying --kind center_out       # which parameters vary among its figures
    kedro ntdyn models-of <evaluation hash>      # the models an evaluation used
    kedro ntdyn gc [--apply]                     # files without records, records without files

Kedro finds this module as the project's `cli.py`. The store is the project's (its
mlflow.yml's tracking URI, unless --tracking-uri says otherwise); values in --where
compare as MLflow stores them (strings).
"""

from __future__ import annotations

from pathlib import Path

import click

from ntdyn.store import RecordStore

DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"


def _where(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r}: expected key=value, e.g. train__pert__std=1.0",
                                     param_hint="--where")  # fmt: skip
        out[key] = value
    return out


def _print(records, keys: list[str]) -> None:
    click.echo(f"{len(records)} record(s)")
    for r in records:
        shown = ", ".join(f"{k}={r.params.get(k)}" for k in keys if k in r.params)
        label = r.tags.get("ntdyn.label") or r.tags.get("ntdyn.figure_kind", "")
        click.echo(f"{r.hash}  run {r.run_id}  {label}  {shown}".rstrip())


@click.group(name="ntdyn")
def cli():
    """ntdyn project commands (Kedro adds the commands of a project's `cli` group)."""


@cli.group(name="ntdyn")
@click.option("--tracking-uri", default=None,
              help="default: the project's mlflow.yml (conf/local over conf/base)")  # fmt: skip
@click.option("--experiment", default="ntdyn", show_default=True)
@click.pass_context
def ntdyn(ctx, tracking_uri: str | None, experiment: str):
    """Query ntdyn's model, evaluation and figure records."""
    # Kedro hands project commands the project's metadata (they may run from a subfolder)
    project = Path(getattr(ctx.obj, "project_path", None) or Path.cwd())
    ctx.meta["ntdyn.project"] = project
    if tracking_uri is None:
        tracking_uri = _project_uri(project)
    ctx.obj = RecordStore(tracking_uri=tracking_uri, experiment=experiment)


def _project_uri(project: Path) -> str:
    from ntdyn.config_loader import project_sqlite_uri, project_tracking_uri

    try:
        uri = project_tracking_uri(project)
    except Exception:  # not inside a bootstrapped Kedro project
        uri = None
    return uri or project_sqlite_uri(DEFAULT_TRACKING_URI, project)


@ntdyn.command()
@click.option("--where", multiple=True, help="key=value, a flattened hyperparameter")
@click.pass_obj
def models(store: RecordStore, where):
    """Model records whose hyperparameters match every --where."""
    w = _where(where)
    _print(store.query_models(**w), list(w))


@ntdyn.command()
@click.option("--analysis", default=None)
@click.option("--where", multiple=True)
@click.pass_obj
def evaluations(store: RecordStore, analysis, where):
    """Evaluation records (of one analysis) matching every --where."""
    w = _where(where)
    _print(store.query_evaluations(analysis=analysis, **w), list(w))


@ntdyn.command()
@click.option("--kind", default=None)
@click.option("--where", multiple=True)
@click.pass_obj
def figures(store: RecordStore, kind, where):
    """Figure records (of one kind) matching every --where."""
    w = _where(where)
    _print(store.query_figures(kind=kind, **w), list(w))


@ntdyn.command()
@click.option("--kind", required=True)
@click.pass_obj
def varying(store: RecordStore, kind):
    """The parameters that vary among the figures of one kind, with their values."""
    for key, values in sorted(store.varying_params(store.query_figures(kind=kind)).items()):
        click.echo(f"{key}: {', '.join(values)}")


@ntdyn.command(name="models-of")
@click.argument("evaluation_hash")
@click.pass_obj
def models_of(store: RecordStore, evaluation_hash: str):
    """The model records an evaluation used (the many-to-many link)."""
    evaluation = store.find_evaluation(evaluation_hash)
    if evaluation is None:
        raise click.ClickException(f"no evaluation record with hash {evaluation_hash}")
    _print(store.models_of_evaluation(evaluation), [])


@ntdyn.command()
@click.option("--apply", is_flag=True, help="archive them (the default only lists them)")
@click.option("--archive-dir", default="mlruns/.archive", show_default=True,
              help="where archived files go")  # fmt: skip
@click.option("--models-dir", default="data/06_models", show_default=True,
              help="local model files <models-dir>/<experiment>/<hash>.eqx to check")  # fmt: skip
@click.option("--runs-dir", default="data/runs", show_default=True,
              help="the folders of runs (outputs before they are published) to check")  # fmt: skip
@click.pass_context
def gc(ctx, apply: bool, archive_dir: str, models_dir: str, runs_dir: str):
    """Files whose record is gone and records whose files are gone (a dry run by default).

    --apply moves such files under --archive-dir and soft-deletes such records in MLflow
    (tagged with the reason; `mlflow runs restore --run-id` brings one back).
    """
    from ntdyn.store.gc import archive, describe, find_leftovers

    store, project = ctx.obj, ctx.meta["ntdyn.project"]
    models = project / models_dir  # relative folders are the project's
    report = find_leftovers(store, models if models.is_dir() else None, project / runs_dir)
    for line in describe(report):
        click.echo(line)
    n_files, n_records = len(report.orphan_files), len(report.records_without_files)
    n_runs = len(report.abandoned_runs)
    if not apply:
        click.echo(f"{n_runs} run(s) left RUNNING by a dead process, {n_files} file(s) without "
                   f"record, {n_records} record(s) without file; dry run: nothing changed "
                   f"(--apply ends those runs as KILLED and archives the rest)")  # fmt: skip
        return
    target = archive(store, report, project / archive_dir, project)
    click.echo(f"ended {n_runs} run(s) as KILLED; archived {n_files} file(s) under {target} "
               f"and {n_records} record(s) (soft-deleted in MLflow)")  # fmt: skip
