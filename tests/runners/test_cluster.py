"""dask.yml: bad values refused by name; the default cluster on loopback with a working
dashboard; TLS from conf lets in a client with the lab's certificates and no other."""

from __future__ import annotations

import psutil
import pytest
import requests
from distributed import Client
from distributed.security import Security

from ntdyn.runners.cluster import DaskConfig, JobResources, connect

QUICK = {"n_workers": 1, "dashboard_address": "127.0.0.1:0"}


@pytest.mark.parametrize(
    ("conf", "match"),
    [
        ({"cluster": {"kind": "kubernetes"}}, r"cluster.kind = 'kubernetes': must be one of"),
        ({"cluster": {"n_workers": 0}}, r"cluster.n_workers = 0: must be an integer >= 1"),
        ({"cluster": {"n_workers": 2.5}}, r"cluster.n_workers = 2.5"),
        ({"cluster": {"threads": 2}}, r"cluster.threads = 2: unknown key; known: .*adapt_maximum"),
        ({"cluster": {"kind": "address"}}, r"cluster.address = None: kind address needs"),
        ({"cluster": {"address": "tcp://1.2.3.4:8786"}}, r"only for kind address"),
        ({"cluster": {"dashboard_address": "8787"}}, r"dashboard_address = '8787': must be"),
        ({"cluster": {"kind": "slurm"}}, r"cluster.host = '127.0.0.1': kind slurm: workers on"),
        ({"cluster": {"kind": "slurm", "interface": "ib0", "resources": {"gpus": -1}}},
         r"cluster.resources.gpus = -1: must be an integer >= 0"),
        ({"cluster": {"kind": "pbs", "interface": "ib0", "resources": {"memory": "lots"}}},
         r"cluster.resources.memory = 'lots': must be a size"),
        ({"cluster": {"kind": "lsf", "interface": "ib0", "resources": {"walltime": 3600}}},
         r"cluster.resources.walltime = 3600"),
        ({"cluster": {"kind": "slurm", "interface": "ib0", "resources": {"cpus": 4}}},
         r"cluster.resources.cpus = 4: unknown key"),
        ({"cluster": {"resources": {"cores": 4}}}, r"cluster.resources .*only for kinds slurm"),
        ({"security": {"tls": {"ca_file": "/nonexistent/ca.pem", "cert": "c", "key": "k"}}},
         r"security.tls.ca_file = '/nonexistent/ca.pem': no such file"),
        ({"security": {"tls": {"ca_file": "/etc/hostname"}}}, r"security.tls.cert = None"),
        ({"security": {"password": "x"}}, r"security.password = 'x': unknown key"),
    ],
)  # fmt: skip
def test_bad_values_are_refused_by_name(conf, match):
    with pytest.raises(ValueError, match=match):
        DaskConfig.from_conf(conf)


def test_jobqueue_resources_follow_jobqueue():
    config = DaskConfig.from_conf({"cluster": {
        "kind": "slurm", "interface": "ib0", "n_workers": 2,
        "resources": {"cores": 8, "memory": "32GB", "processes": 2, "gpus": 2,
                      "walltime": "04:00:00", "queue": "gpu", "account": "lab",
                      "job_script_prologue": ["source .venv/bin/activate"]}}})  # fmt: skip
    kwargs = config.resources.job_kwargs("slurm")
    assert kwargs["job_extra_directives"] == ["--gres=gpu:2"]
    assert {k: kwargs[k] for k in ("cores", "memory", "processes", "walltime", "queue")} == {
        "cores": 8,
        "memory": "32GB",
        "processes": 2,
        "walltime": "04:00:00",
        "queue": "gpu",
    }
    assert JobResources(gpus=1).job_kwargs("lsf")["job_extra_directives"] == ['-gpu "num=1"']
    assert JobResources(gpus=1).job_kwargs("pbs")["job_extra_directives"] == ["-l ngpus=1"]
    # the job script dask-jobqueue would submit (no SLURM needed to write it)
    from dask_jobqueue import SLURMCluster

    cluster_kwargs = config.jobqueue_kwargs()
    assert cluster_kwargs["interface"] == "ib0" and cluster_kwargs["protocol"] == "tcp://"
    cluster_kwargs.update(
        interface=None, scheduler_options={"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}
    )
    with SLURMCluster(**cluster_kwargs) as cluster:  # no ib0 here: the scheduler on loopback
        script = cluster.job_script()
    for line in ("#SBATCH --gres=gpu:2", "#SBATCH -p gpu", "#SBATCH -A lab", "#SBATCH -t 04:00:00",
                 "source .venv/bin/activate"):  # fmt: skip
        assert line in script, script


def _listening(port: int) -> list[str]:
    return [c.laddr.ip for c in psutil.Process().net_connections("inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port]  # fmt: skip


def test_default_cluster_binds_to_loopback_and_its_dashboard_works():
    config = DaskConfig.from_conf({"cluster": QUICK})
    assert (config.host, config.dashboard_address) == ("127.0.0.1", "127.0.0.1:0")
    assert DaskConfig().dashboard_address == "127.0.0.1:8787"
    with connect(config) as client:
        scheduler = client.scheduler.address
        assert scheduler.startswith("tcp://127.0.0.1:")
        workers = client.scheduler_info()["workers"]
        assert workers and all(w.startswith("tcp://127.0.0.1:") for w in workers)
        assert _listening(int(scheduler.rsplit(":", 1)[1])) == ["127.0.0.1"]
        dashboard = client.dashboard_link
        assert dashboard.startswith("http://127.0.0.1:")
        assert _listening(int(dashboard.split(":")[2].split("/")[0])) == ["127.0.0.1"]
        page = requests.get(dashboard, timeout=30)
        assert page.status_code == 200 and "Dask" in page.text
        assert client.submit(sum, [1, 2]).result() == 3


def _certificates(folder, name):
    """A throw-away self-signed certificate (distributed's Security.temporary) as PEM files."""
    temporary = Security.temporary()
    paths = {}
    for key, text in (("ca_file", temporary.tls_ca_file), ("cert", temporary.tls_client_cert),
                      ("key", temporary.tls_client_key)):  # fmt: skip
        path = folder / f"{name}-{key}.pem"
        path.write_text(text)
        paths[key] = str(path)
    return paths


def test_tls_from_conf_refuses_clients_without_the_certificates(tmp_path):
    lab, other = _certificates(tmp_path, "lab"), _certificates(tmp_path, "other")
    config = DaskConfig.from_conf({"cluster": QUICK, "security": {"tls": lab}})
    with connect(config) as client:
        address = client.scheduler.address
        assert address.startswith("tls://127.0.0.1:")
        assert client.submit(sum, [1, 2]).result() == 3  # the workers joined over TLS too
        with pytest.raises(OSError, match="(?i)connection reset|timed out|closed"):  # plain TCP
            Client(address.replace("tls://", "tcp://"), timeout="3s")
        with pytest.raises(OSError, match="TLS certificate does not match"):  # not the lab's
            Client(address, security=DaskConfig.from_conf({"security": {"tls": other}})
                   .security(), timeout="3s")  # fmt: skip
        with Client(address, security=config.security(), timeout="10s") as member:
            assert member.submit(sum, [3, 4]).result() == 7
