"""The Dask cluster of a run, from `conf/<env>/dask.yml`: typed, checked, then built by Dask.

`DaskConfig.from_conf(conf)` turns the `cluster:` and `security:` sections of dask.yml into a
frozen config that refuses bad values before anything starts, naming the key, the value and
what is allowed. `connect(config)` then makes the cluster with Dask's own classes and yields a
client of it:

- kind `local`: a `distributed.LocalCluster` of `n_workers` worker processes (each started by
  its nanny with `spawn`: JAX is never forked), scheduler, workers and dashboard on 127.0.0.1;
- kind `address`: an existing scheduler (`dask scheduler` started by hand, or by a batch job);
- kind `slurm` / `lsf` / `pbs`: dask-jobqueue's SLURMCluster / LSFCluster / PBSCluster, its
  jobs sized by `resources` (jobqueue's own keyword names: cores, memory, processes,
  walltime, queue, account, job_extra_directives, ...; what is left out comes from
  jobqueue's configuration, ~/.config/dask/jobqueue.yaml, as jobqueue users expect), `gpus`
  turned into the scheduler's GPU request.

Everything binds to loopback unless conf says otherwise. A jobqueue cluster's workers run on
other machines, so it needs `interface` (or a `host` that is not loopback), and then TLS:
`security.tls` names the CA, certificate and key files (paths in a git-ignored conf/local or
from the environment, never keys in the repository); with it every connection (scheduler,
workers, clients) is TLS with mutual authentication, and a client without the certificates is
refused.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

KINDS = ("local", "address", "slurm", "lsf", "pbs")
JOBQUEUE = {"slurm": "SLURMCluster", "lsf": "LSFCluster", "pbs": "PBSCluster"}
LOOPBACK = "127.0.0.1"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _fail(key: str, value: Any, allowed: str) -> None:
    raise ValueError(f"dask.yml {key} = {value!r}: {allowed}")


def _unknown(section: str, conf: Mapping, known: set[str]) -> None:
    extra = sorted(set(conf) - known)
    if extra:
        _fail(
            f"{section}.{extra[0]}",
            conf[extra[0]],
            f"unknown key; known: {', '.join(sorted(known))}",
        )


def _int(key: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        _fail(key, value, f"must be an integer >= {minimum}")


def _strings(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not all(isinstance(v, str) for v in value or ()):
        _fail(key, value, "must be a list of strings")
    return tuple(value or ())


@dataclass(frozen=True)
class JobResources:
    """One batch job of a jobqueue cluster (dask-jobqueue's names; None: jobqueue's config).

    cores: CPU cores per job; memory: per job ("16GB"); processes: Dask workers per job (one
    per GPU is the usual choice); gpus: GPUs per job (SLURM `--gres=gpu:N`, LSF
    `-gpu "num=N"`, PBS `ngpus=N`); walltime: "HH:MM:SS"; queue / account: where it runs.
    """

    cores: int | None = None
    memory: str | None = None
    processes: int | None = None
    gpus: int = 0
    walltime: str | None = None
    queue: str | None = None
    account: str | None = None
    job_extra_directives: tuple[str, ...] = ()
    job_script_prologue: tuple[str, ...] = ()  # e.g. module load, source .venv/bin/activate
    local_directory: str | None = None
    log_directory: str | None = None
    python: str | None = None  # the workers' Python (default: this one)

    def __post_init__(self):
        for name in ("cores", "processes"):
            if getattr(self, name) is not None:
                _int(f"cluster.resources.{name}", getattr(self, name), 1)
        _int("cluster.resources.gpus", self.gpus, 0)
        if self.processes and self.cores and self.processes > self.cores:
            _fail("cluster.resources.processes", self.processes,
                  f"at most cluster.resources.cores = {self.cores}")  # fmt: skip
        if self.walltime is not None and (
            not isinstance(self.walltime, str) or len(self.walltime.split(":")) not in (2, 3)
        ):
            _fail("cluster.resources.walltime", self.walltime, 'must be "HH:MM:SS" or "HH:MM"')
        if self.memory is not None:
            from dask.utils import parse_bytes

            try:
                parse_bytes(self.memory)
            except (ValueError, TypeError):
                _fail("cluster.resources.memory", self.memory, 'must be a size like "16GB"')

    def job_kwargs(self, kind: str) -> dict[str, Any]:
        """Keyword arguments of dask-jobqueue's cluster class for `kind`."""
        kwargs: dict[str, Any] = {
            k: getattr(self, k)
            for k in ("cores", "memory", "processes", "walltime", "queue", "account",
                      "local_directory", "log_directory", "python")
            if getattr(self, k) is not None
        }  # fmt: skip
        extra = list(self.job_extra_directives)
        if self.gpus and kind == "slurm":
            extra.append(f"--gres=gpu:{self.gpus}")
        elif self.gpus and kind == "lsf":
            extra.append(f'-gpu "num={self.gpus}"')
        elif self.gpus and kind == "pbs":
            extra.append(f"-l ngpus={self.gpus}")
        if extra:
            kwargs["job_extra_directives"] = extra
        if self.job_script_prologue:
            kwargs["job_script_prologue"] = list(self.job_script_prologue)
        return kwargs


@dataclass(frozen=True)
class TLSConfig:
    """Certificate files for TLS with mutual authentication: one CA, and one certificate and
    key used by the scheduler, the workers and the clients of the lab."""

    ca_file: str
    cert: str
    key: str

    def __post_init__(self):
        for name in ("ca_file", "cert", "key"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                _fail(f"security.tls.{name}", value, "must be the path of a PEM file")
            if not Path(value).expanduser().is_file():
                _fail(f"security.tls.{name}", value, "no such file")

    def security(self):
        from distributed.security import Security

        ca, cert, key = (str(Path(p).expanduser()) for p in (self.ca_file, self.cert, self.key))
        return Security(tls_ca_file=ca, tls_client_cert=cert, tls_client_key=key,
                        tls_scheduler_cert=cert, tls_scheduler_key=key, tls_worker_cert=cert,
                        tls_worker_key=key, require_encryption=True)  # fmt: skip


@dataclass(frozen=True)
class DaskConfig:
    """Which cluster a run uses and how (dask.yml `cluster:` and `security:`).

    n_workers: worker processes (local) or jobs (jobqueue; 0 with `adapt_maximum`: jobs come
    and go with the work); threads_per_worker: 1 (JAX has its own threads); memory_limit: per
    local worker ("auto": the machine's memory shared out); host: where the scheduler (and
    local workers) listen; interface: jobqueue's network interface for scheduler and workers
    (e.g. ib0); dashboard_address: "host:port" of Dask's dashboard (port 0: any free one);
    retries: how often a task that raised runs again (a task whose worker died is rescheduled
    by Dask in any case).
    """

    kind: str = "local"
    address: str | None = None
    n_workers: int = 2
    threads_per_worker: int = 1
    memory_limit: str = "auto"
    host: str = LOOPBACK
    interface: str | None = None
    dashboard_address: str = f"{LOOPBACK}:8787"
    adapt_maximum: int | None = None
    retries: int = 1
    resources: JobResources = field(default_factory=JobResources)
    tls: TLSConfig | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            _fail("cluster.kind", self.kind, f"must be one of {', '.join(KINDS)}")
        if self.kind == "address":
            if not isinstance(self.address, str) or "://" not in self.address:
                _fail("cluster.address", self.address,
                      "kind address needs the scheduler's, e.g. tcp://10.0.0.5:8786")  # fmt: skip
            if self.tls is not None and not self.address.startswith("tls://"):
                _fail("cluster.address", self.address, "with security.tls it must be tls://...")
        elif self.address is not None:
            _fail("cluster.address", self.address, f"only for kind address (kind is {self.kind!r})")
        _int("cluster.n_workers", self.n_workers, 0 if self.adapt_maximum else 1)
        _int("cluster.threads_per_worker", self.threads_per_worker, 1)
        _int("cluster.retries", self.retries, 0)
        if self.adapt_maximum is not None:
            _int("cluster.adapt_maximum", self.adapt_maximum, max(1, self.n_workers))
        if not isinstance(self.host, str) or not self.host:
            _fail("cluster.host", self.host, "must be a host name or address to listen on")
        host, sep, port = str(self.dashboard_address).rpartition(":")
        if not sep or not port.isdigit():
            _fail("cluster.dashboard_address", self.dashboard_address,
                  'must be "host:port", e.g. "127.0.0.1:8787" (port 0: any free port)')  # fmt: skip
        if self.kind in JOBQUEUE:
            if self.interface is None and self.host in LOOPBACK_HOSTS:
                _fail("cluster.host", self.host,
                      f"kind {self.kind}: workers on compute nodes cannot reach a scheduler on "
                      f"loopback; set cluster.interface (e.g. ib0) or cluster.host to this "
                      f"machine's address on the cluster network, with security.tls")  # fmt: skip
        elif self.resources != JobResources():
            _fail("cluster.resources", "...", f"only for kinds {', '.join(JOBQUEUE)}")

    @property
    def protocol(self) -> str:
        return "tls://" if self.tls is not None else "tcp://"

    @classmethod
    def from_conf(cls, conf: Mapping | None) -> DaskConfig:
        """From dask.yml's content ({cluster: ..., security: ...}); None: the defaults."""
        conf = dict(conf or {})
        _unknown("", conf, {"cluster", "security"})
        cluster = dict(conf.get("cluster") or {})
        known = {f.name for f in fields(cls)} - {"tls"}
        _unknown("cluster", cluster, known)
        resources = dict(cluster.pop("resources", None) or {})
        _unknown("cluster.resources", resources, {f.name for f in fields(JobResources)})
        for name in ("job_extra_directives", "job_script_prologue"):
            if name in resources:
                resources[name] = _strings(f"cluster.resources.{name}", resources[name])
        security = dict(conf.get("security") or {})
        _unknown("security", security, {"tls"})
        tls = security.get("tls")
        if tls is not None:
            if not isinstance(tls, Mapping):
                _fail("security.tls", tls, "must be {ca_file, cert, key} or null")
            _unknown("security.tls", tls, {"ca_file", "cert", "key"})
            missing = sorted({"ca_file", "cert", "key"} - set(tls))
            if missing:
                _fail(f"security.tls.{missing[0]}", None, "must be the path of a PEM file")
            tls = TLSConfig(**tls)
        return cls(**cluster, resources=JobResources(**resources), tls=tls)

    def security(self):
        return None if self.tls is None else self.tls.security()

    def jobqueue_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of dask-jobqueue's cluster class (security apart)."""
        scheduler: dict[str, Any] = {"dashboard_address": self.dashboard_address}
        where = {"interface": self.interface} if self.interface else {}
        if not self.interface:
            scheduler["host"] = self.host
        return {"protocol": self.protocol, "scheduler_options": scheduler, **where,
                **self.resources.job_kwargs(self.kind)}  # fmt: skip


def make_cluster(config: DaskConfig):
    """A new cluster as `config` says (not for kind address: there the cluster exists)."""
    from ntdyn.parallel import check_spawn

    check_spawn()
    security = config.security()
    common = {"security": security} if security is not None else {}
    if config.kind == "local":
        from distributed import LocalCluster

        return LocalCluster(n_workers=config.n_workers,
                            threads_per_worker=config.threads_per_worker,
                            memory_limit=config.memory_limit, processes=True, host=config.host,
                            dashboard_address=config.dashboard_address,
                            protocol=config.protocol, **common)  # fmt: skip
    if config.kind in JOBQUEUE:
        import dask_jobqueue

        cls = getattr(dask_jobqueue, JOBQUEUE[config.kind])
        cluster = cls(**config.jobqueue_kwargs(), **common)
        log.info("dask-jobqueue job script:\n%s", cluster.job_script())
        if config.adapt_maximum:
            cluster.adapt(minimum_jobs=config.n_workers, maximum_jobs=config.adapt_maximum)
        else:
            cluster.scale(jobs=config.n_workers)
        return cluster
    raise ValueError(f"kind {config.kind!r} has no cluster to make (it connects to one)")


@contextlib.contextmanager
def connect(config: DaskConfig) -> Iterator[Any]:
    """A client of the cluster `config` describes; a cluster made here is closed at the end.

    The client is this process's default one (`distributed.default_client`) while the block
    runs; workers' `ntdyn` log records are forwarded to this process's logging.
    """
    from distributed import Client

    security = config.security()
    extra = {"security": security} if security is not None else {}
    cluster = None if config.kind == "address" else make_cluster(config)
    try:
        client = Client(config.address if cluster is None else cluster, **extra)
        try:
            client.forward_logging("ntdyn", level=logging.INFO)
            log.info("Dask cluster %s: dashboard %s", client.scheduler.address,
                     client.dashboard_link)  # fmt: skip
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()
