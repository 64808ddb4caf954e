"""Retention policies, legal hold, erasure and audit pruning on every builtin state store
(memory, SQLite, PostgreSQL): the `RetentionPolicies`, `LegalHolds`, `Erasure` and
`AuditPruning` abilities keep the same rules everywhere."""
from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from baseshift.core import audit
from baseshift.core.audit import AuditEntry, AuditPruning, verify
from baseshift.core.capabilities import Erasure, LegalHolds, RetentionPolicies
from baseshift.core.errors import Conflict, NotFound
from baseshift.core.retention import Tombstone
from baseshift.core.states import JobState, RunState
from tests.plugins.backends import opened_state_store
from tests.plugins.store_records import a_job, a_run, an_attempt, changes

STORES = ["memory", "sqlite", "postgres"]
OLD, NEW, CUTOFF = 1000.0, 5000.0, 3000.0
SECRET = "subject-4711@example.org"


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    async with opened_state_store(request.param, tmp_path) as opened:
        assert isinstance(opened, RetentionPolicies)
        assert isinstance(opened, LegalHolds) and isinstance(opened, Erasure)
        yield opened


async def seed(store: Any, run_id: str, ended: float | None, *,
               state: RunState = RunState.COMPLETED) -> None:
    """A run with one job and one attempt, which ended at `ended` (None: still running)."""
    created = (ended or OLD) - 10
    run = a_run(run_id, created_at=created, inputs={"email": SECRET},
                state=RunState.RUNNING)
    await store.create_run(run, [a_job("a", run_id, state=JobState.RUNNING,
                                       inputs={"to": SECRET})])
    finished = ended is not None
    await store.apply(changes(
        replace(run, state=state if finished else RunState.RUNNING, ended_at=ended,
                outputs={"sent": SECRET} if finished else None),
        a_job("a", run_id, state=JobState.SUCCEEDED if finished else JobState.RUNNING,
              inputs={"to": SECRET}, output={"receipt": SECRET} if finished else None,
              ended_at=ended, error="bounced" if finished else None),
        an_attempt("a", 1, run_id, state=JobState.SUCCEEDED if finished else JobState.RUNNING,
                   started_at=created, ended_at=ended, log=f"mailing {SECRET}\n")))


async def seed_all(store: Any) -> None:
    await seed(store, "old", OLD)
    await seed(store, "new", NEW)
    await seed(store, "live", None)
    await seed(store, "held", OLD, state=RunState.FAILED)
    await store.set_legal_hold("held", True)


async def test_runs_policy_removes_old_finished_runs_but_never_live_or_held_ones(
        store: Any) -> None:
    await seed_all(store)
    looked = await store.apply_retention({"runs": CUTOFF}, dry_run=True)
    assert (dict(looked.removed), looked.held) == ({"runs": 1}, 1)
    assert await store.load_run("old") is not None  # a dry run removes nothing
    done = await store.apply_retention({"runs": CUTOFF})
    assert (dict(done.removed), done.held) == ({"runs": 1}, 1)
    assert await store.load_run("old") is None
    for kept in ("new", "live", "held"):
        snapshot = await store.load_run(kept)
        assert snapshot is not None and snapshot.attempts, kept
    again = await store.apply_retention({"runs": CUTOFF})
    assert dict(again.removed) == {"runs": 0}


async def test_log_and_result_policies_blank_old_values_and_keep_the_rows(store: Any) -> None:
    await seed_all(store)
    cutoffs = {"attempt_logs": CUTOFF, "job_results": CUTOFF}
    looked = await store.apply_retention(cutoffs, dry_run=True)
    assert dict(looked.removed) == {"attempt_logs": 1, "job_results": 1}
    assert (await store.load_run("old")).attempts[0].log
    done = await store.apply_retention(cutoffs)
    assert (dict(done.removed), done.held) == ({"attempt_logs": 1, "job_results": 1}, 1)
    old = await store.load_run("old")
    assert old.attempts[0].log == "" and old.attempts[0].number == 1
    assert (old.jobs["a"].output, old.jobs["a"].error) == (None, None)
    for kept in ("new", "held"):
        snapshot = await store.load_run(kept)
        assert snapshot.attempts[0].log and snapshot.jobs["a"].output, kept
    assert (await store.load_run("live")).attempts[0].log


async def test_legal_hold_is_set_lifted_and_audited(store: Any) -> None:
    await seed(store, "old", OLD)
    await store.set_legal_hold("old", True, [audit.entry("run.hold", "run:old")])
    assert await store.legal_holds() == ["old"]
    assert dict((await store.apply_retention({"runs": CUTOFF})).removed) == {"runs": 0}
    await store.set_legal_hold("old", False, [audit.entry("run.release", "run:old")])
    assert await store.legal_holds() == []
    assert dict((await store.apply_retention({"runs": CUTOFF})).removed) == {"runs": 1}
    actions = [r.entry.action for r in await store.audit_records(0, 100)]
    assert actions[-2:] == ["run.hold", "run.release"]
    with pytest.raises(NotFound):
        await store.set_legal_hold("nope", True)


async def test_erasure_leaves_only_a_tombstone_and_refuses_live_or_held_runs(
        store: Any) -> None:
    await seed_all(store)
    stone = Tombstone("old", "orders", 6000.0, "alice")
    await store.erase_run(stone, [audit.entry("run.erase", "run:old")])
    assert await store.load_run("old") is None
    assert await store.tombstone("old") == stone
    assert await store.tombstone("new") is None
    assert (await store.audit_records(0, 100))[-1].entry.action == "run.erase"
    for refused in ("live", "held"):
        with pytest.raises(Conflict):
            await store.erase_run(replace(stone, run_id=refused))
        assert await store.load_run(refused) is not None
    with pytest.raises(NotFound):
        await store.erase_run(replace(stone, run_id="nope"))


def _at(seconds: float, n: int) -> AuditEntry:
    return AuditEntry("run.start", f"run:r{n}", "alice", at=seconds)


async def tamper(store: Any, sql: str) -> None:
    await store._query(lambda c: c.exec_driver_sql(sql))


async def test_audit_pruning_keeps_the_chain_verifiable_and_tampering_visible(
        store: Any) -> None:
    assert isinstance(store, AuditPruning)
    await store.append_audit([_at(OLD + n, n) for n in range(5)])
    await store.append_audit([_at(NEW + n, n) for n in range(3)])
    assert await store.prune_audit(CUTOFF, dry_run=True) == 5
    assert (await verify(store))[1] is None
    done = await store.apply_retention({"audit_entries": CUTOFF})
    assert dict(done.removed) == {"audit_entries": 5}
    anchor = await store.audit_anchor()
    assert anchor.seq == 5
    records = await store.audit_records(0, 100)
    assert [r.seq for r in records] == [6, 7, 8, 9]
    assert records[0].prev_hash == anchor.hash
    prune = records[-1].entry
    assert (prune.action, prune.detail["anchor_seq"], prune.detail["removed"]) == \
        ("audit.prune", "5", "5")
    assert await verify(store) == (4, None)
    # tampering after the pruning is still found
    if store.name == "memory":
        trail = store._trail
        trail.records[1] = replace(trail.records[1],
                                   entry=replace(trail.records[1].entry, actor="mallory"))
    else:
        await tamper(store, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 7")
    checked, broken = await verify(store)
    assert broken is not None and broken.seq == 7 and "edited" in broken.reason


async def test_a_moved_anchor_or_a_removed_first_entry_is_found(store: Any) -> None:
    await store.append_audit([_at(OLD + n, n) for n in range(3)])
    await store.append_audit([_at(NEW + n, n) for n in range(3)])
    await store.prune_audit(CUTOFF)
    assert (await verify(store))[1] is None
    if store.name == "memory":
        del store._trail.records[0]
    else:
        await tamper(store, "DELETE FROM audit_log WHERE seq = 4")
    broken = (await verify(store))[1]
    assert broken is not None and broken.seq == 4 and "missing" in broken.reason
    if store.name == "memory":
        store._trail.anchor = replace(store._trail.anchor, seq=4,
                                      hash=store._trail.records[0].prev_hash)
    else:
        await tamper(store, "UPDATE audit_anchor SET seq = 4, hash = "
                     "(SELECT prev_hash FROM audit_log WHERE seq = 5)")
    broken = (await verify(store))[1]
    assert broken is not None and "anchor" in broken.reason


async def test_erased_sqlite_data_is_gone_from_the_file(tmp_path: Path) -> None:
    async with opened_state_store("sqlite", tmp_path) as store:
        await seed(store, "old", OLD)
        await seed(store, "new", NEW)
        files = sorted((tmp_path / "data").glob("baseshift.db*"))
        assert any(SECRET.encode() in f.read_bytes() for f in files)
        await store.erase_run(Tombstone("old", "orders", 6000.0, "alice"))
        await store.erase_run(Tombstone("new", "orders", 6000.0, "alice"))
        files = sorted((tmp_path / "data").glob("baseshift.db*"))
        assert files and not any(SECRET.encode() in f.read_bytes() for f in files)
        assert await store.tombstone("old") is not None
