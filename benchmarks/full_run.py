"""A whole `kedro run` at research scale, with its time, memory and disk measured (issue 13).

Runs `kedro run --env full --pipeline <p> [--params ...]` in the current project (use a fresh
clone: it writes data/ and mlruns/) and samples every 2 s: the host memory in use
(MemTotal - MemAvailable), the resident memory of the run's process tree, the GPU memory
in use (nvidia-smi) and, every 10 s, the bytes under data/ and mlruns/. Stops the run if the
host's memory in use passes `--host-limit-gb` (so a runaway run cannot take the machine down
with its output). Writes per-node seconds and record counts (the run summary, through
NTDYN_RUN_SUMMARY), the peaks and the time series to `<out>/full_run_<pipeline>_<machine>.json`:

    python benchmarks/full_run.py --pipeline analysis_part2 [--params k=v,...]

Several pipelines separated by commas run one after another in the same project (each
measured and saved on its own), for a whole `kedro run --env full` measured in parts:
`--pipeline analysis_part1,task_vs_data,training_dynamics`; it stops at the first that fails.

A run longer than the time one has (a device session) goes in segments: `--time-limit-s N`
stops the run (SIGTERM, then SIGKILL after 15 s) once it has run N s, and saves what it
measured, marked stopped; the next `kedro run` in the same project, in the same session or
after `data/` and `mlruns/` were carried to another machine, reuses every record made and
resumes each training from its last checkpoint (`training_options.checkpoint`), and ends
the MLflow runs the killed one left open. `--tag seg1` names a segment's report. Reports of
an environment other than `full` are named `<env>_run_<pipeline>_<machine>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _results import add_out_option, save

GB = 1e9


def host_used_bytes() -> int:
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    kib = lambda k: int(info[k].split()[0]) * 1024  # noqa: E731
    return kib("MemTotal") - kib("MemAvailable")


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of `pid` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            rss_pages = int(Path(f"/proc/{p}/statm").read_text().split()[1])
            total += rss_pages * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    return total


def gpu_used_bytes() -> int | None:
    if shutil.which("nvidia-smi") is None:
        return None
    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True)  # fmt: skip
    try:
        return int(float(out.stdout.split()[0]) * 2**20)
    except (IndexError, ValueError):
        return None


def disk_bytes(*folders: Path) -> int:
    out = subprocess.run(["du", "-sb", *map(str, folders)], capture_output=True, text=True)
    return sum(int(line.split()[0]) for line in out.stdout.splitlines() if line.strip())


def figure_files(*folders: Path) -> dict:
    """Count and largest size of the figure files (figure.html / .json) under `folders`,
    and how many pass the 5 MB a figure may take (issue 13)."""
    sizes = [f.stat().st_size for d in folders if d.exists() for f in d.rglob("figure.*")
             if f.suffix in (".html", ".json")]  # fmt: skip
    return {"n_files": len(sizes), "largest_mb": round(max(sizes, default=0) / 1e6, 2),
            "over_5_mb": sum(s > 5e6 for s in sizes)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pipeline", default="analysis_part2")
    ap.add_argument("--env", default="full")
    ap.add_argument("--params", default=None)
    ap.add_argument("--host-limit-gb", type=float, default=100.0)
    ap.add_argument(
        "--time-limit-s",
        type=float,
        default=None,
        help="stop the run after this many seconds (a segment of a longer run)",
    )
    ap.add_argument("--tag", default=None, help="appended to the report's name, e.g. seg1")
    ap.add_argument(
        "--log",
        default=None,
        help="also write the run's output here, as it comes ({pipeline} is replaced by "
        "the pipeline's name)",
    )
    add_out_option(ap)
    opts = ap.parse_args()
    if opts.time_limit_s is not None and opts.time_limit_s <= 0:
        ap.error(f"--time-limit-s = {opts.time_limit_s}: must be > 0 (seconds)")
    rc = 0
    for pipeline in opts.pipeline.split(","):
        rc = measure(pipeline, opts)
        if rc != 0:
            break
    sys.exit(rc)


def measure(pipeline: str, opts: argparse.Namespace) -> int:
    """Run `kedro run --env <env> --pipeline <pipeline>`, measure it, save its report."""
    root = Path.cwd()
    summary_file = Path(tempfile.mkstemp(suffix=".json")[1])
    args = [str(Path(sys.executable).with_name("kedro")), "run", "--env", opts.env,
            "--pipeline", pipeline]  # fmt: skip
    if not Path(args[0]).exists():
        args[:1] = [sys.executable, "-m", "kedro"]
    if opts.params:
        args += ["--params", opts.params]
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "COLUMNS": "200",
           "NTDYN_RUN_SUMMARY": str(summary_file)}  # fmt: skip
    log_path = opts.log.replace("{pipeline}", pipeline) if opts.log else os.devnull
    log = open(log_path, "w")  # noqa: SIM115
    disk0 = disk_bytes(root / "data", root / "mlruns")
    mlruns0 = disk_bytes(root / "mlruns")
    t0 = time.perf_counter()
    run = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True)  # fmt: skip
    series, peaks, stopped = [], {"host": 0, "rss": 0, "gpu": 0, "disk": 0}, []

    def sample():
        k = 0
        while run.poll() is None:
            host, rss, gpu = host_used_bytes(), tree_rss_bytes(run.pid), gpu_used_bytes() or 0
            disk = disk_bytes(root / "data", root / "mlruns") - disk0 if k % 5 == 0 else None
            for name, v in (("host", host), ("rss", rss), ("gpu", gpu), ("disk", disk or 0)):
                peaks[name] = max(peaks[name], v)
            if disk is not None:
                row = {"t": round(time.perf_counter() - t0), "host_gb": round(host / GB, 2),
                       "rss_gb": round(rss / GB, 2), "gpu_gb": round(gpu / GB, 2),
                       "disk_gb": round(disk / GB, 3)}  # fmt: skip
                series.append(row)
                print(row, flush=True)
            if host > opts.host_limit_gb * GB:
                stopped.append(f"host memory {host / GB:.1f} GB > {opts.host_limit_gb} GB")
                os.killpg(run.pid, signal.SIGKILL)
            elapsed = time.perf_counter() - t0
            if opts.time_limit_s is not None and elapsed > opts.time_limit_s and not stopped:
                stopped.append(f"time limit: {opts.time_limit_s:.0f} s")
                os.killpg(run.pid, signal.SIGTERM)
                timer = threading.Timer(15, _kill_if_alive, (run,))
                timer.daemon = True  # nothing to wait for once the run has ended
                timer.start()
            k += 1
            time.sleep(2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rc = run.wait()
    sampler.join(timeout=30)
    seconds = time.perf_counter() - t0
    written = disk_bytes(root / "data", root / "mlruns") - disk0
    summary = json.loads(summary_file.read_text()) if summary_file.stat().st_size else {}
    results = {
        "returncode": rc, "stopped": stopped, "seconds": round(seconds, 1),
        "peak_host_used_gb": round(peaks["host"] / GB, 2),
        "peak_process_rss_gb": round(peaks["rss"] / GB, 2),
        "peak_gpu_used_gb": round(peaks["gpu"] / GB, 2),
        "written_gb": round(written / GB, 3),
        "written_mlruns_gb": round((disk_bytes(root / "mlruns") - mlruns0) / GB, 3),
        "figure_files": figure_files(root / "data", root / "mlruns"),
        "run_summary": summary, "series": series,
    }  # fmt: skip
    print(json.dumps({k: v for k, v in results.items() if k != "series"}, indent=1))
    config = {"pipeline": pipeline, "env": opts.env, "params": opts.params,
              "time_limit_s": opts.time_limit_s, "tag": opts.tag}  # fmt: skip
    name = f"full_run_{pipeline}" if opts.env == "full" else f"{opts.env}_run_{pipeline}"
    save(name + (f"_{opts.tag}" if opts.tag else ""), config, results, opts.out)
    # a segment stopped at its time limit did what it was asked: the next one goes on
    return 0 if stopped and stopped[0].startswith("time limit") else rc


def _kill_if_alive(run: subprocess.Popen) -> None:
    """SIGKILL the run's process group if SIGTERM did not end it."""
    if run.poll() is None:
        os.killpg(run.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
