"""Kernels per training step, counted in a compiled program's optimised HLO.

XLA writes each compiled module, after its optimisation passes, when `--xla_dump_to` is set
(`dump_flags` gives the flags; they must be in XLA_FLAGS before JAX starts). On a GPU
every top-level instruction of a computation that is not bookkeeping (a parameter, a tuple,
a constant, a bitcast, ...) launches one kernel: a fusion is one kernel, a cuBLAS call one,
a copy one. A `while` runs its body (and condition) trip-count times, each iteration with
a host-visible predicate, so kernels inside a loop are multiplied by its trip count.
`count_kernels` walks the entry computation that way and also lists every loop with its
body's own kernels and trip count. On the CPU the same counts describe XLA:CPU's thunks
(fewer fusions than on a GPU), so compare counts from one backend only.

Needs the standard library alone.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

# Instructions that launch nothing: bookkeeping, aliases, constants.
NO_KERNEL = {
    "parameter", "get-tuple-element", "tuple", "constant", "bitcast", "after-all",
    "opt-barrier", "partition-id", "replica-id", "iota",
}  # fmt: skip

_COMP = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")
_INSTR = re.compile(r"^\s*(ROOT\s+)?%?([\w.\-]+)\s*=\s*(.+?)\s+([\w\-]+)\((.*)$")
_ATTR = {
    "body": re.compile(r"body=%?([\w.\-]+)"),
    "condition": re.compile(r"condition=%?([\w.\-]+)"),
    "to_apply": re.compile(r"to_apply=%?([\w.\-]+)"),
    "calls": re.compile(r"calls=%?([\w.\-]+)"),
    "branches": re.compile(r"branch_computations=\{([^}]*)\}"),
    "true": re.compile(r"true_computation=%?([\w.\-]+)"),
    "false": re.compile(r"false_computation=%?([\w.\-]+)"),
    "trip": re.compile(r"\"known_trip_count\":\{\"n\":\"(\d+)\"\}"),
}


def dump_flags(folder: str) -> str:
    """XLA_FLAGS that write every module's optimised HLO as text into `folder`."""
    return f"--xla_dump_to={folder} --xla_dump_hlo_as_text"


def start_dump() -> str:
    """A new folder that XLA will dump every module's optimised HLO into, added to XLA_FLAGS;
    call it before JAX starts (XLA reads its flags once)."""
    folder = tempfile.mkdtemp(prefix="ntdyn_hlo_")
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {dump_flags(folder)}".strip()
    return folder


def parse(text: str) -> tuple[dict[str, list[tuple[str, str]]], str]:
    """Computations of an HLO module: {name: [(opcode, rest of line)]}, and the entry's name."""
    comps: dict[str, list[tuple[str, str]]] = {}
    entry, current = "", None
    for line in text.splitlines():
        if current is None:
            m = _COMP.match(line)
            if m and "=" not in line.split("{")[0].split("(")[0]:
                current = m.group(2)
                comps[current] = []
                if m.group(1):
                    entry = current
            continue
        if line.strip() == "}":
            current = None
            continue
        m = _INSTR.match(line)
        if m:
            comps[current].append((m.group(4), m.group(5)))
    return comps, entry


def _attr(key: str, rest: str) -> str | None:
    m = _ATTR[key].search(rest)
    return m.group(1) if m else None


def count_kernels(text: str) -> dict:
    """Kernels one run of the module launches (loops multiplied out; a loop without a known
    trip count counted once and flagged) and every loop's own body kernels and trip count."""
    comps, entry = parse(text)
    loops: list[dict] = []

    def kernels(name: str, depth: int) -> int:
        total = 0
        for op, rest in comps.get(name, []):
            if op in NO_KERNEL:
                continue
            if op == "while":
                body, cond = _attr("body", rest), _attr("condition", rest)
                trip = _attr("trip", rest)
                inner = kernels(body, depth + 1) + kernels(cond, depth + 1)
                loops.append({"depth": depth, "body": body, "trip_count": int(trip) if trip
                              else None, "kernels_per_iteration": inner})  # fmt: skip
                total += inner * (int(trip) if trip else 1)
            elif op == "conditional":
                names = _attr("branches", rest)
                branches = ([b.strip().lstrip("%") for b in names.split(",")] if names
                            else [_attr("true", rest), _attr("false", rest)])  # fmt: skip
                total += 1 + max(kernels(b, depth + 1) for b in branches if b)
            elif op in ("call", "async-start") and (_attr("to_apply", rest) or
                                                     _attr("calls", rest)):  # fmt: skip
                total += kernels(_attr("to_apply", rest) or _attr("calls", rest), depth)
            else:
                total += 1  # a fusion, a library call, a copy, an unfused op
        return total

    per_run = kernels(entry, 0)
    ops = [op for op, _ in (i for c in comps.values() for i in c)]
    return {
        "kernels_per_run": per_run,
        "loops": loops,
        "conditionals": ops.count("conditional"),
        "custom_calls": ops.count("custom-call"),
        "unknown_trip_counts": sum(1 for lp in loops if lp["trip_count"] is None),
    }


def module_text(folder: str, name: str) -> str:
    """The optimised HLO of the largest dumped module whose file name holds `name`."""
    files = [p for p in Path(folder).glob(f"*{name}*after_optimizations.txt")]
    if not files:
        raise FileNotFoundError(f"no optimised HLO of {name!r} in {folder}")
    return max(files, key=lambda p: p.stat().st_size).read_text()
