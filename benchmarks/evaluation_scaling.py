"""Memory and storage of `analysis_part2` when every evaluation has 8x the repeats (issue 13).

Runs `kedro run --pipeline analysis_part2` at demo scale twice, each in a fresh copy of the
project (empty data/ and mlruns/): as configured, and with every `n_repeats` multiplied by
`--factor`. Reports each run's peak resident memory (`/usr/bin/time -v`) and what it wrote
under data/ and mlruns/, and the ratios (targets: at most 1.5 each, with the default bounded
sample of single-trial states):

    .venv/bin/python benchmarks/evaluation_scaling.py [--factor 8]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from _results import add_out_option, save
from default_run import REPO, fresh_copy

TARGET_RATIO = 1.5


def bytes_under(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def repeat_params(factor: int) -> str:
    """`--params` that multiply every evaluation's n_repeats of part 2 by `factor`."""
    conf = yaml.safe_load((REPO / "conf/base/parameters_analysis_part2.yml").read_text())
    evaluation = conf["analysis_part2"]["evaluation"]
    return ",".join(
        f"analysis_part2.evaluation.{name}.n_repeats={int(spec['n_repeats']) * factor}"
        for name, spec in evaluation.items()
        if isinstance(spec, dict) and "n_repeats" in spec
    )


def measured_run(root: Path, extra: list[str]) -> dict:
    kedro = Path(sys.executable).with_name("kedro")
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "COLUMNS": "400"}
    t0 = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-v", str(kedro), "run", "--pipeline", "analysis_part2", *extra],
        cwd=root, env=env, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-5000:] + done.stderr[-5000:])
        raise SystemExit(f"kedro run failed ({done.returncode})")
    peak_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1])
    data, mlruns = bytes_under(root / "data"), bytes_under(root / "mlruns")
    return {"seconds": round(seconds, 1), "peak_rss_mib": round(peak_kib / 1024),
            "data_mb": round(data / 1e6, 1), "mlruns_mb": round(mlruns / 1e6, 1),
            "written_mb": round((data + mlruns) / 1e6, 1)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--factor", type=int, default=8)
    add_out_option(ap)
    opts = ap.parse_args()
    runs = {}
    for label, extra in (
        ("default", []),
        (f"repeats_x{opts.factor}", ["--params", repeat_params(opts.factor)]),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            runs[label] = measured_run(fresh_copy(Path(tmp)), extra)
            print(label, runs[label], flush=True)
    base, big = runs["default"], runs[f"repeats_x{opts.factor}"]
    results = {
        **runs,
        "peak_memory_ratio": round(big["peak_rss_mib"] / base["peak_rss_mib"], 3),
        "storage_ratio": round(big["written_mb"] / base["written_mb"], 3),
        "target_ratio": TARGET_RATIO,
    }
    print(results)
    save("evaluation_scaling", {"pipeline": "analysis_part2", "factor": opts.factor}, results,
         opts.out)  # fmt: skip


if __name__ == "__main__":
    main()
