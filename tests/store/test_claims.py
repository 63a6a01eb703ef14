"""Claims: one winner among simultaneous claimants, a dead holder's hash taken over, waiting
ends with an error naming the holder, and processes racing for one hash record it once."""

from __future__ import annotations

import subprocess
import sys
import time

import pandas as pd
import pytest
from mlflow.entities import ViewType

from ntdyn.store import RecordStore
from ntdyn.store.claims import (
    RECORDED,
    REUSED,
    TAG_CLAIM,
    TAG_CLAIM_KIND,
    ClaimPolicy,
    ClaimTimeoutError,
    compute_once,
)
from ntdyn.store.processes import TAG_ABANDONED, TAG_PROCESS, this_process
from ntdyn.store.records import MODEL

HASH = "0123456789abcdef"
FAST = ClaimPolicy(settle_s=0.5, poll_s=0.2, timeout_s=30)

# Claims HASH, says so, then records it after `hold` seconds (or is killed before: "die").
HOLDER = """
import os, signal, sys, time
import pandas as pd
from ntdyn.store import RecordStore
from ntdyn.store.claims import ClaimPolicy
store = RecordStore(tracking_uri=sys.argv[1], experiment="claims",
                    claim_policy=ClaimPolicy(poll_s=0.2))
won, lost = store.claims.contend("model", [sys.argv[2]])
print("won" if won else "lost", flush=True)
time.sleep(float(sys.argv[3]))
if sys.argv[4] == "die":
    os.kill(os.getpid(), signal.SIGKILL)
"""

# Races for HASH through compute_once; the winner trains (sleeps) and records.
RACER = """
import sys, time
import pandas as pd
from ntdyn.store import RecordStore
from ntdyn.store.claims import ClaimPolicy, compute_once
store = RecordStore(tracking_uri=sys.argv[1], experiment="claims",
                    claim_policy=ClaimPolicy(poll_s=0.2))
history = pd.DataFrame({"step": [0], "replicate": [0], "term": ["total"], "value": [1.0]})
def compute(hashes):
    time.sleep(1.5)
    open(sys.argv[3], "w").write("x")
    return {h: store.record_model(hash=h, params={"who": sys.argv[4]}, history=history,
                                  model_file=sys.argv[3]) for h in hashes}
out = compute_once(store, "model", sys.argv[2].split(","), store.find_model, compute)
print(",".join(sorted(status for _, status in out.values())), flush=True)
"""


def _history() -> pd.DataFrame:
    return pd.DataFrame({"step": [0], "replicate": [0], "term": ["total"], "value": [1.0]})


def _finished(store: RecordStore, h: str) -> list:
    return store.client.search_runs(
        [store.experiment_id],
        f"tags.\"ntdyn.hash\" = '{h}' AND attributes.status = 'FINISHED'",
        run_view_type=ViewType.ACTIVE_ONLY,
    )


@pytest.fixture
def uri(tmp_path):
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_of_two_claimants_the_first_wins_and_the_second_is_told_who_holds_it(uri):
    a = RecordStore(tracking_uri=uri, experiment="claims", claim_policy=FAST)
    b = RecordStore(tracking_uri=uri, experiment="claims", claim_policy=FAST)
    won_a, lost_a = a.claims.contend(MODEL, [HASH, "1" * 16])
    won_b, lost_b = b.claims.contend(MODEL, [HASH, "2" * 16])
    assert set(won_a) == {HASH, "1" * 16} and not lost_a
    assert set(won_b) == {"2" * 16}  # distinct hashes: each its own
    assert lost_b[HASH].run_id == won_a[HASH].run_id
    assert [c.run_id for c in a.claims.live(MODEL)[HASH]] == [won_a[HASH].run_id]  # b's dropped
    a.claims.release(won_a[HASH])
    assert HASH not in a.claims.live(MODEL)


def test_claims_made_in_the_same_millisecond_are_ordered_by_run_id(uri):
    """The tie-break every claimant applies to the claims it reads: earliest start, then the
    smallest run id (two claims of one millisecond, as on a tracking server)."""
    store = RecordStore(tracking_uri=uri, experiment="claims")
    tags = {TAG_CLAIM: f"{MODEL}:{HASH}", TAG_CLAIM_KIND: MODEL, TAG_PROCESS: this_process()}
    runs = [store.client.create_run(store.experiment_id, start_time=1000, tags=tags)
            for _ in range(3)]  # fmt: skip
    later = store.client.create_run(store.experiment_id, start_time=999, tags=tags)
    live = store.claims.live(MODEL)[HASH]
    expected = [later.info.run_id, *sorted(r.info.run_id for r in runs)]
    assert [c.run_id for c in live] == expected


def test_a_waiter_times_out_with_an_error_naming_the_holder(uri):
    holder = RecordStore(tracking_uri=uri, experiment="claims", claim_policy=FAST)
    impatient = ClaimPolicy(settle_s=0, poll_s=0.1, timeout_s=0.5)
    waiter = RecordStore(tracking_uri=uri, experiment="claims", claim_policy=impatient)
    won, _ = holder.claims.contend(MODEL, [HASH])
    with pytest.raises(ClaimTimeoutError) as raised:
        compute_once(waiter, MODEL, [HASH], waiter.find_model, lambda hs: pytest.fail("ran"))
    assert won[HASH].run_id in str(raised.value) and won[HASH].process in str(raised.value)


def test_a_dead_holder_s_hash_is_taken_over_by_the_waiter(uri, tmp_path, caplog):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, uri, HASH, "2", "die"],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout.readline().strip() == "won"
    store = RecordStore(tracking_uri=uri, experiment="claims", claim_policy=FAST)
    model = tmp_path / "m.eqx"
    model.write_bytes(b"x")
    caplog.set_level("INFO", logger="ntdyn.store.claims")
    compute = lambda hs: {h: store.record_model(hash=h, params={}, history=_history(),  # noqa: E731
                                                model_file=model) for h in hs}  # fmt: skip
    out = compute_once(store, MODEL, [HASH], store.find_model, compute)
    assert holder.wait(timeout=60) == -9
    assert out[HASH][1] == RECORDED and len(_finished(store, HASH)) == 1
    assert "waiting for model" in caplog.text and f":{holder.pid}:" in caplog.text
    dead = store.client.search_runs([store.experiment_id], f"tags.\"{TAG_CLAIM}\" = 'model:{HASH}'",
                                    run_view_type=ViewType.ALL)  # fmt: skip
    killed = [r for r in dead if r.info.status == "KILLED"]
    assert len(killed) == 1 and "is gone" in killed[0].data.tags[TAG_ABANDONED]


def test_processes_racing_for_one_hash_record_it_once_and_distinct_hashes_in_parallel(
    uri, tmp_path
):
    shared, own = HASH, [f"{i}" * 16 for i in range(1, 4)]
    started = time.monotonic()
    racers = [subprocess.Popen([sys.executable, "-c", RACER, uri, f"{shared},{own[i]}",
                                str(tmp_path / f"m{i}.eqx"), str(i)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for i in range(3)]  # fmt: skip
    results = [p.communicate(timeout=300) for p in racers]
    elapsed = time.monotonic() - started
    assert all(p.returncode == 0 for p in racers), [err[-3000:] for _, err in results]
    statuses = sorted(out.strip() for out, _ in results)
    # one racer trained the shared hash with its own; the others trained theirs, reused it
    assert statuses == sorted([f"{RECORDED},{RECORDED}", f"{RECORDED},{REUSED}",
                               f"{RECORDED},{REUSED}"])  # fmt: skip
    store = RecordStore(tracking_uri=uri, experiment="claims")
    assert len(_finished(store, shared)) == 1
    assert all(len(_finished(store, h)) == 1 for h in own)
    assert not store.claims.live(MODEL)  # every claim released
    print(f"3 racers: {elapsed:.1f} s")
