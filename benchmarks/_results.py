"""Shared by the benchmark scripts: machine facts and the results file in benchmarks/results/.

A script measures, then calls `save(name, config, results, out)`, which adds what the
machine was (device kind, CPU count, load average at start and end, library versions,
date) and writes `<out>/<name>_<machine>.json` (e.g. `training_throughput_h200.json`,
`fixed_points_cpu.json`), or to `out` itself when it ends in `.json`; `--out -` only
prints. Needs the standard library and JAX alone, so it runs on the GPU hosts.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
LOAD_AT_START = os.getloadavg()  # at import, before the benchmark runs


def add_out_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        default=str(RESULTS_DIR),
        help="folder for <benchmark>_<machine>.json, or a .json path, or - to print only "
        "(default: benchmarks/results)",
    )


def machine_label(device=None) -> str:
    """A short name for the machine from JAX's first device: 'cpu', 'h200', 'h100', ..."""
    import jax

    device = device or jax.devices()[0]
    if device.platform == "cpu":
        return "cpu"
    tokens = re.split(r"[^a-z0-9]+", device.device_kind.lower())
    model = next((t for t in tokens if re.fullmatch(r"[a-z]+\d+[a-z]?", t)), None)
    label = model or "".join(t for t in tokens if t != "nvidia") or device.platform
    n = sum(1 for d in jax.devices() if d.platform == device.platform)
    return label if n == 1 else f"{label}x{n}"


def _versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("jax", "jaxlib", "equinox", "optax", "numpy", "pandas"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[1]
    try:

        def git(*a: str) -> str:
            return subprocess.run(
                ["git", *a], cwd=root, capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()

        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--", "src", "benchmarks")
    except (OSError, subprocess.SubprocessError):
        return None
    return head + (" (with uncommitted changes)" if dirty else "")


def machine_facts() -> dict:
    import jax

    devices = jax.devices()
    return {
        "label": machine_label(devices[0]),
        "jax_platform": devices[0].platform,
        "device_kind": devices[0].device_kind,
        "device": str(devices[0]),
        "device_count": len(devices),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "os": platform.platform(),
        "processor": platform.machine(),
        "loadavg_start": [round(x, 2) for x in LOAD_AT_START],
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "versions": _versions(),
        "git_commit": _git_commit(),
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def save(name: str, config: dict, results: dict, out: str) -> dict:
    """Print the report as JSON and write it (unless out is '-'); returns the report."""
    machine = machine_facts()
    report = {
        "benchmark": name,
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "config": config,
        "results": results,
        "machine": machine,
    }
    text = json.dumps(report, indent=1, default=float)
    print(text)
    if out != "-":
        path = Path(out)
        if path.suffix != ".json":
            path = path / f"{name}_{machine['label']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
        print(f"wrote {path}", file=sys.stderr)
    return report
