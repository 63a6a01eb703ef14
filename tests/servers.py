"""Real servers for tests: PostgreSQL on loopback and `mlflow server` on it (issue 17, 3-4).

`postgres` starts a throw-away PostgreSQL cluster (temporary data folder, a free loopback port,
its socket in the data folder) and stops and deletes it at the end of the session. PostgreSQL
refuses to run as root: as root the cluster belongs to, and runs as, user `nobody`. Tests skip,
saying why, where PostgreSQL (`make test` installs Debian's `postgresql` where it can) or the
driver (`psycopg2`, in the test extras) is missing.

`start_mlflow_server` runs `mlflow server` on a database of that cluster, bound to 127.0.0.1,
with artifacts served by the server (`--serve-artifacts`, `--artifacts-destination`), optionally
with MLflow's basic-auth app (users and permissions in another database of the cluster; the
admin password is generated here and passed only through the server's environment).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

MLFLOW = str(Path(sys.executable).with_name("mlflow"))
START_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    """The folder of PostgreSQL's server programs: on PATH, else Debian's newest version."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                      key=lambda p: int(Path(p).parts[-3]))  # fmt: skip
    return Path(versions[-1]).parent if versions else None


@dataclass
class Postgres:
    port: int
    folder: Path

    def uri(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                                      dbname="postgres")  # fmt: skip
        connection.autocommit = True
        try:  # autocommit, outside `with connection` (a transaction): CREATE DATABASE
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.uri(name)


@contextlib.contextmanager
def running_postgres() -> Iterator[Postgres]:
    pytest.importorskip("psycopg2", reason="no PostgreSQL driver: pip install psycopg2-binary")
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql); `make test` "
                    "installs it where it can")  # fmt: skip
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="ntdyn-pg-"))
    if os.geteuid() == 0:  # postgres refuses root: the cluster runs as nobody
        runuser = shutil.which("runuser") or shutil.which("setpriv")
        if runuser is None:
            shutil.rmtree(folder)
            pytest.skip("running as root without runuser/setpriv: cannot start PostgreSQL")
        nobody = pwd.getpwnam("nobody")
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
        if runuser.endswith("runuser"):
            as_user = [runuser, "-u", "nobody", "--"]
        else:
            as_user = [runuser, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                       "--clear-groups", "--"]  # fmt: skip
    data, log = folder / "data", folder / "postgres.log"
    port = free_port()

    def pg(*args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run([*as_user, *args], cwd=folder, capture_output=True, text=True,
                              env={**os.environ, "LC_ALL": "C"}, **kwargs)  # fmt: skip

    # trust: only loopback connections are accepted (listen_addresses), from this machine
    init = pg(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
              "-E", "UTF8")  # fmt: skip
    if init.returncode != 0:
        shutil.rmtree(folder)
        pytest.fail(f"initdb failed:\n{init.stdout}\n{init.stderr}")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {data}"
    start = pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w",
               "start", timeout=START_TIMEOUT_S)  # fmt: skip
    try:
        if start.returncode != 0:
            pytest.fail(f"PostgreSQL did not start:\n{start.stderr}\n{log.read_text()[-3000:]}")
        yield Postgres(port, folder)
    finally:
        pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop", timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class MlflowServer:
    uri: str  # http://127.0.0.1:<port>
    backend: str
    artifacts: Path
    log: Path
    admin: tuple[str, str] | None = None  # (user, password) with the basic-auth app


@contextlib.contextmanager
def running_mlflow_server(
    postgres: Postgres, folder: Path, name: str, *, auth: bool = False
) -> Iterator[MlflowServer]:
    """`mlflow server` on database `name` of `postgres`, on 127.0.0.1, until the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    backend = postgres.create_database(name)
    artifacts, log = folder / "artifacts", folder / "mlflow-server.log"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false", DO_NOT_TRACK="1")
    command = [MLFLOW, "server", "--backend-store-uri", backend, "--serve-artifacts",
               "--artifacts-destination", str(artifacts), "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1"]  # fmt: skip
    admin = None
    if auth:
        password = secrets.token_urlsafe(24)
        admin = ("admin", password)
        config = folder / "basic_auth.ini"
        config.write_text(
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = {postgres.create_database(name + '_auth')}\n"
            "admin_username = admin\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        )  # no password in the file: it comes from the environment
        env.update(
            MLFLOW_AUTH_CONFIG_PATH=str(config),
            MLFLOW_AUTH_ADMIN_PASSWORD=password,
            MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_urlsafe(32),
        )  # CSRF tokens
        command += ["--app-name", "basic-auth"]
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=folder, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{uri}/health", timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not answer in {START_TIMEOUT_S:.0f} s:\n"
                            f"{log.read_text()[-4000:]}")  # fmt: skip
            time.sleep(0.5)
        yield MlflowServer(uri, backend, artifacts, log, admin)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the server and its workers
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def assert_server_lists(uri: str, experiment_id: str, run_ids) -> None:
    """The tracking server's REST API (what its UI reads) lists exactly `run_ids` as the model
    records of the experiment, and its UI page is served."""
    found = requests.post(f"{uri}/api/2.0/mlflow/runs/search", timeout=30, json={
        "experiment_ids": [experiment_id], "filter": "tags.\"ntdyn.record\" = 'model'",
        "max_results": 100}).json()["runs"]  # fmt: skip
    assert sorted(r["info"]["run_id"] for r in found) == sorted(run_ids)
    page = requests.get(f"{uri}/", timeout=30)
    assert page.status_code == 200 and "<title>MLflow</title>" in page.text


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def mlflow_server(postgres, tmp_path_factory) -> Iterator[MlflowServer]:
    with running_mlflow_server(postgres, tmp_path_factory.mktemp("mlflow"), "mlflow") as s:
        yield s


@pytest.fixture(scope="session")
def mlflow_auth_server(postgres, tmp_path_factory) -> Iterator[MlflowServer]:
    folder = tmp_path_factory.mktemp("mlflow_auth")
    with running_mlflow_server(postgres, folder, "mlflow_authed", auth=True) as s:
        yield s
