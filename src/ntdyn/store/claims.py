"""Claims: a record's hash is computed once, however many runs need it at the same time.

A run about to compute a record (train a model, run an evaluation) first *claims* its hash: a
RUNNING MLflow run tagged ``ntdyn.claim = <kind>:<hash>`` and with its process (see
`processes`). Among the live claims of a hash (RUNNING, not deleted, made by a process that is
not known to be gone), the earliest start time wins, then the smallest run id, so every
claimant reaches the same verdict. The winner looks for the record once more (a previous
holder may have just finished), computes, records and releases its claim (ended and deleted);
the others drop theirs and wait for the record, logging which run and process they wait for.
When the holder's claim is gone without a record (it failed, or its process died: its claim is
then ended as KILLED), the waiters claim again and the earliest of them takes over.

Claims live in the tracking store itself, so they work on any MLflow backend. Simultaneous
claimants must see each other: on a sqlite store a file lock beside the database serialises
making claims, and every new claim starts after each live claim it finds (a later claim always
loses); on other backends a claimant reads the claims `settle_s` after making its own, longer
than a concurrent claim's write takes to land. A claimant on another host is taken as alive
(this host cannot tell), unless it made its claim in a task of a Dask worker and this process
is connected to the same scheduler: then it is alive while the scheduler lists its worker (a
worker that died is replaced by one with a new address, and its task runs again elsewhere).
Waiting for a live claimant ends at `timeout_s` with an error naming it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlflow.entities import Run, ViewType
from mlflow.exceptions import MlflowException

from .initialise import sqlite_path
from .processes import (
    TAG_DASK_WORKER,
    TAG_PROCESS,
    mark_abandoned,
    run_alive,
    this_dask_worker,
    this_process,
)
from .records import TAG_PARENT_RUN, Record

if TYPE_CHECKING:
    from .mlflow_store import RecordStore

log = logging.getLogger(__name__)

TAG_CLAIM = "ntdyn.claim"  # "<kind>:<hash>" being computed by the run's process
TAG_CLAIM_KIND = "ntdyn.claim_kind"
RECORDED = "recorded"
REUSED = "reused"


@dataclass(frozen=True)
class ClaimPolicy:
    """How claimants meet: settle_s (non-sqlite backends: the wait between making a claim and
    reading the others), poll_s (how often a waiter looks for the record), timeout_s (how long
    it waits for one holder before giving up)."""

    settle_s: float = 1.0
    poll_s: float = 2.0
    timeout_s: float = 24 * 3600.0

    def __post_init__(self):
        for name in ("settle_s", "poll_s", "timeout_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"ClaimPolicy.{name} = {getattr(self, name)}: must be >= 0")


@dataclass(frozen=True)
class Claim:
    """A live claim: the run that holds it, for what, by which process, since when."""

    run_id: str
    kind: str
    hash: str
    process: str
    start_time: int  # ms

    @classmethod
    def from_run(cls, run: Run) -> Claim:
        kind, _, hash = run.data.tags[TAG_CLAIM].partition(":")
        return cls(run.info.run_id, kind, hash, run.data.tags.get(TAG_PROCESS, ""),
                   int(run.info.start_time or 0))  # fmt: skip

    @property
    def order(self) -> tuple[int, str]:
        """The tie-break: the smallest wins."""
        return (self.start_time, self.run_id)

    def describe(self) -> str:
        return f"run {self.run_id} of process {self.process or '(unknown)'}"


class ClaimTimeoutError(TimeoutError):
    """A holder kept its claim longer than the policy's timeout."""


class Claims:
    """The claims of one experiment of a tracking store."""

    def __init__(self, client, experiment_id: str, tracking_uri: str,
                 policy: ClaimPolicy | None = None):  # fmt: skip
        self.client = client
        self.experiment_id = experiment_id
        self.policy = policy or ClaimPolicy()
        db = sqlite_path(tracking_uri)
        self._lock_path = None if db is None else db.with_name(db.name + ".claims.lock")
        self._kept_ended = False  # a claim was ended but could not be deleted (permissions)
        self.parent_run_id: str | None = None  # claims' parent where no fluent run is active

    @contextlib.contextmanager
    def _serialised(self) -> Iterator[bool]:
        """Holds the sqlite store's claims lock (yields True); other backends: no lock."""
        if self._lock_path is None:
            yield False
            return
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            yield True

    def live(self, kind: str) -> dict[str, list[Claim]]:
        """Live claims of `kind` by hash, winner first. Claims of a process that is gone are
        ended as KILLED (and dropped)."""
        runs, token = [], None
        while True:
            page = self.client.search_runs(
                [self.experiment_id],
                f"tags.\"{TAG_CLAIM_KIND}\" = '{kind}' AND attributes.status = 'RUNNING'",
                run_view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token,
            )  # fmt: skip
            runs += list(page)
            token = page.token
            if not token:
                break
        dead = [r for r in runs if run_alive(r) is False]
        gone = {r.info.run_id for r in dead}
        for run in dead:
            log.warning("claim on %s by process %s, which is gone: ended as KILLED",
                        run.data.tags[TAG_CLAIM], run.data.tags.get(TAG_PROCESS))  # fmt: skip
        mark_abandoned(self.client, dead)
        by_hash: dict[str, list[Claim]] = {}
        for run in runs:
            if run.info.run_id not in gone:
                claim = Claim.from_run(run)
                by_hash.setdefault(claim.hash, []).append(claim)
        return {h: sorted(claims, key=lambda c: c.order) for h, claims in by_hash.items()}

    def _make(self, kind: str, hashes: Sequence[str]) -> dict[str, Claim]:
        """One new claim per hash; on sqlite each starts after every live claim of `kind`."""
        import mlflow

        active = mlflow.active_run()
        tags = {TAG_CLAIM_KIND: kind, TAG_PROCESS: this_process()}
        if (worker := this_dask_worker()) is not None:  # its liveness: the scheduler's word
            tags[TAG_DASK_WORKER] = worker
        parent = active.info.run_id if active is not None else self.parent_run_id
        if parent is not None:  # shown under the `kedro run` that needs it
            tags[TAG_PARENT_RUN] = parent
        with self._serialised() as serialised:
            start = int(time.time() * 1000)
            if serialised:
                latest = [c.start_time for cs in self.live(kind).values() for c in cs]
                start = max([start, *(t + 1 for t in latest)])
            claims = {}
            for h in hashes:
                run = self.client.create_run(self.experiment_id, start_time=start,
                                             tags={**tags, TAG_CLAIM: f"{kind}:{h}"},
                                             run_name=f"claim {kind} {h[:12]}")  # fmt: skip
                claims[h] = Claim(run.info.run_id, kind, h, tags[TAG_PROCESS], start)
        if not serialised and self.policy.settle_s:
            time.sleep(self.policy.settle_s)  # concurrent claims land before they are read
        return claims

    def release(self, claim: Claim, status: str = "FINISHED") -> None:
        """End the claim's run and delete it (claims are not records). On a tracking server
        with authentication, a user with EDIT (not MANAGE) on the experiment may not delete
        runs: the claim is then left ended (an ended claim is not live), with one warning."""
        self.client.set_terminated(claim.run_id, status)
        try:
            self.client.delete_run(claim.run_id)
        except MlflowException as e:
            if e.error_code != "PERMISSION_DENIED":
                raise
            if not self._kept_ended:
                log.warning("this user may not delete runs in experiment %s (MANAGE permission): "
                            "claims are ended, not deleted", self.experiment_id)  # fmt: skip
            self._kept_ended = True

    def contend(
        self, kind: str, hashes: Sequence[str]
    ) -> tuple[dict[str, Claim], dict[str, Claim]]:
        """Claim `hashes`: (the claims this process won, the holder of each hash it lost).

        Lost claims are released at once; won claims must be released by the caller.
        """
        mine = self._make(kind, hashes)
        live = self.live(kind)
        won, lost = {}, {}
        for h, claim in mine.items():
            first = live.get(h, [claim])[0]
            if first.run_id == claim.run_id:
                won[h] = claim
            else:
                lost[h] = first
                self.release(claim)
        return won, lost

    def wait(
        self,
        holders: Mapping[str, Claim],
        find: Callable[[str], Record | None],
        describe: Callable[[str], str] = str,
    ) -> tuple[dict[str, Record], list[str]]:
        """Wait for the records of hashes others hold: (records found, hashes nobody holds any
        more without a record: the caller claims them again)."""
        waiting, found, orphaned = dict(holders), {}, []
        since = {h: time.monotonic() for h in waiting}
        for h, claim in waiting.items():
            log.info("waiting for %s %s: %s is computing it", claim.kind, describe(h),
                     claim.describe())  # fmt: skip
        while waiting:
            for h in list(waiting):
                if (record := find(h)) is not None:
                    found[h] = record
                    del waiting[h]
            if not waiting:
                break
            live = self.live(next(iter(waiting.values())).kind)
            for h, claim in list(waiting.items()):
                if not live.get(h):  # the holder is gone: its record, or nobody's
                    record = find(h)
                    found.update({h: record} if record is not None else {})
                    orphaned += [] if record is not None else [h]
                    del waiting[h]
                elif live[h][0].run_id != claim.run_id:  # another claimant took over
                    waiting[h], since[h] = live[h][0], time.monotonic()
                    log.info("waiting for %s %s: %s took it over", claim.kind, describe(h),
                             live[h][0].describe())  # fmt: skip
                elif time.monotonic() - since[h] > self.policy.timeout_s:
                    raise ClaimTimeoutError(
                        f"waited {self.policy.timeout_s:.0f} s for {claim.kind} {describe(h)} "
                        f"(hash {h}): {claim.describe()} still holds it. If that process is "
                        f"stuck, stop it (its claim is then taken over) or end run "
                        f"{claim.run_id} in MLflow."
                    )
            if waiting:
                time.sleep(self.policy.poll_s)
        return found, orphaned


def compute_once(
    store: RecordStore,
    kind: str,
    hashes: Sequence[str],
    find: Callable[[str], Record | None],
    compute: Callable[[list[str]], Mapping[str, Record]],
    describe: Callable[[str], str] = str,
    reused_message: str | None = "reusing %s from record %s",
) -> dict[str, tuple[Record, str]]:
    """The record of every hash, `(record, RECORDED | REUSED)`: found, waited for while another
    live run computes it, or computed here (`compute(hashes) -> {hash: record}`, one call per
    batch this process won) — never two records of one hash.

    describe(hash): how log lines name it; reused_message: the line logged for each record
    reused, with describe(hash) and the record's run id (None: not logged)."""
    out: dict[str, tuple[Record, str]] = {}

    def reuse(records: Mapping[str, Record | None]) -> list[str]:
        for h, record in records.items():
            if record is not None:
                if reused_message:
                    log.info(reused_message, describe(h), record.run_id)
                out[h] = (record, REUSED)
        return [h for h, record in records.items() if record is None]

    pending = reuse({h: find(h) for h in hashes})
    while pending:
        won, lost = store.claims.contend(kind, pending)
        done: set[str] = set()
        try:
            todo = reuse({h: find(h) for h in won})  # recorded just before this claim
            done.update(set(won) - set(todo))
            for h, record in (compute(todo) if todo else {}).items():
                out[h] = (record, RECORDED)
                done.add(h)
        finally:
            for h, claim in won.items():
                store.claims.release(claim, "FINISHED" if h in done else "FAILED")
        found, pending = store.claims.wait(lost, find, describe)
        reuse(found)
    return out
