"""Wall time and peak memory of the default `kedro run` on the demo configuration.

Runs `kedro run` in a fresh copy of the project (empty data/ and mlruns/, so it
trains from scratch), as a user would after `make run`:

    .venv/bin/python benchmarks/default_run.py [--pipeline analysis_part1] [--twice]

Writes `benchmarks/results/default_run[_<pipeline>]_<machine>.json` (`--out`), with each
run's end-of-run summary (records made and reused, XLA compilations).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import add_out_option, save

REPO = Path(__file__).resolve().parents[1]
# Wall-time targets on a 2-core CPU (issues 2 and 3).
TARGETS_S = {None: 300, "analysis_part1": 300, "analysis_part2": 600}


def fresh_copy(root: Path) -> Path:
    shutil.copy(REPO / "pyproject.toml", root)
    shutil.copy(REPO / ".telemetry", root)
    shutil.copytree(REPO / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    (root / "src").mkdir()  # the package is imported from the installed project
    for sub in ("data", "mlruns"):
        (root / sub).mkdir()
    return root


def timed_run(root: Path, args: list[str]) -> tuple[float, str]:
    """(seconds, the run's summary paragraph)."""
    kedro = Path(sys.executable).with_name("kedro")
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "COLUMNS": "400"}
    t0 = time.perf_counter()
    done = subprocess.run([str(kedro), "run", *args], cwd=root, env=env, check=True,
                          capture_output=True, text=True)  # fmt: skip
    seconds = time.perf_counter() - t0
    # the log's line wrapping and rich's `file.py:line` column, out of the summary paragraph
    text = re.sub(r"\s+", " ", re.sub(r"\s\S+\.py:\d+\s", " ", done.stdout + done.stderr))
    found = re.search(r"ntdyn run summary: (.*?)\. Figures:", text)
    return seconds, found.group(1) if found else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pipeline", default=None)
    ap.add_argument("--twice", action="store_true", help="also time a second run (cache hits)")
    add_out_option(ap)
    opts = ap.parse_args()
    args = ["--pipeline", opts.pipeline] if opts.pipeline else []
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = fresh_copy(Path(tmp))
        seconds, summary = timed_run(root, args)
        results |= {"first_run_s": round(seconds, 1), "first_run_summary": summary}
        if opts.twice:
            seconds, summary = timed_run(root, args)
            results |= {"second_run_s": round(seconds, 1), "second_run_summary": summary}
    # ru_maxrss of waited-for children is in KiB on Linux (the larger of the runs).
    results["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    results["target_s"] = TARGETS_S.get(opts.pipeline, 300)
    name = "default_run" + (f"_{opts.pipeline}" if opts.pipeline else "")
    save(name, {"pipeline": opts.pipeline or "__default__", "twice": opts.twice}, results, opts.out)


if __name__ == "__main__":
    main()
