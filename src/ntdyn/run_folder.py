"""A `kedro run`'s own folder: where its outputs live while it runs, published when it ends.

Runs started together in one project must never read each other's outputs (one run's
`sweep` read by another run's training node). While a run runs, every file-backed dataset it
writes lives under ``data/runs/<run id>/`` (the catalog path, ``data/`` dropped: ``data/05_model
_input/x/sweep.parquet`` -> ``data/runs/<run id>/05_model_input/x/sweep.parquet``); what it only
reads is the latest finished run's, at the usual paths. When the run succeeds, each of its
outputs replaces the one at the usual path in a single rename (a file: `os.replace`; a folder:
exchanged with the old one), under a lock so that runs ending together publish one after the
other, never mixed; then its folder is removed. A failed run marks its folder failed and a
killed one leaves it: `kedro ntdyn gc` lists them (`leftovers`) and archives them.

The catalog itself is unchanged: outside a run (kedro viz, notebooks) it reads the usual paths.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ntdyn.store.processes import process_alive, this_process

RUNS_DIR = Path("data") / "runs"
MARKER = "run.json"  # {"process", "status", "pipelines", "started"}
RUNNING, FAILED = "running", "failed"
PUBLISH_LOCK = ".publish.lock"
UNMARKED_GRACE_S = 60.0  # a folder without its marker younger than this is being created


def private_path(path: str, folder: Path, project: Path) -> str | None:
    """Where a run writes the dataset whose catalog path is `path` (relative paths are the
    `project`'s); None for a remote path (``s3://...``: not made private)."""
    if "://" in path:
        return None
    p = Path(path)
    if p.is_absolute():
        if not p.is_relative_to(project):
            return str(folder / "absolute" / p.relative_to(p.anchor))
        p = p.relative_to(project)
    parts = p.parts[1:] if p.parts[:1] == ("data",) else p.parts
    return str(folder.joinpath(*parts))


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def _remove(path: Path) -> None:
    shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def publish(src: Path, dst: Path) -> None:
    """Put `src` (a file or folder) at `dst` in one rename; what `dst` held is removed."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists() or (src.is_file() and dst.is_file()):
        os.replace(src, dst)
        return
    if src.is_dir() == dst.is_dir() and _exchange(src, dst):
        _remove(src)  # now the old one
        return
    old = dst.with_name(f".{dst.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(dst, old)  # no exchange: `dst` is missing for the time of one rename
    os.replace(src, dst)
    _remove(old)


@dataclass(frozen=True)
class RunFolder:
    """The folder of one run: `root`/`name`."""

    root: Path
    name: str

    @property
    def path(self) -> Path:
        return self.root / self.name

    @classmethod
    def start(cls, root: Path, session_id: str, pipelines: list[str]) -> RunFolder:
        """A new folder (named by the Kedro session and a random suffix), marked running."""
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in session_id)
        folder = cls(root, f"{name}-{uuid.uuid4().hex[:8]}")
        folder.path.mkdir(parents=True)
        folder.mark(RUNNING, pipelines=pipelines, started=time.strftime("%Y-%m-%dT%H:%M:%S"))
        return folder

    def mark(self, status: str, **info) -> None:
        marker = self.path / MARKER
        data = json.loads(marker.read_text()) if marker.exists() else {"process": this_process()}
        tmp = self.path / f".{MARKER}.tmp"
        tmp.write_text(json.dumps(data | info | {"status": status}))
        os.replace(tmp, marker)

    @contextlib.contextmanager
    def _publishing(self) -> Iterator[None]:
        with open(self.root / PUBLISH_LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            yield

    def publish(self, outputs: dict[str, str]) -> list[str]:
        """Publish {private path: usual path} (those written), then remove the folder.
        Returns the usual paths published."""
        done = []
        with self._publishing():
            for private, usual in outputs.items():
                if Path(private).exists():
                    publish(Path(private), Path(usual))
                    done.append(usual)
        shutil.rmtree(self.path)
        return done


def leftovers(root: Path) -> list[tuple[Path, str]]:
    """Run folders no live run will publish: (folder, why). A run's folder is kept while its
    process runs; a failed run's, a dead process's and one never marked are leftovers."""
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        marker = folder / MARKER
        if not marker.is_file():
            if time.time() - folder.stat().st_mtime > UNMARKED_GRACE_S:
                out.append((folder, "run folder without its marker"))
            continue
        info = json.loads(marker.read_text())
        if info.get("status") != RUNNING:
            out.append((folder, f"run {info.get('status')}"))
        elif process_alive(info.get("process", "")) is False:
            out.append((folder, f"run by process {info.get('process')}, which is gone"))
    return out
