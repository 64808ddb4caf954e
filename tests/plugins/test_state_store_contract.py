"""The StateStore contract, run against every built-in backend, plus SQLite's own promises
(pragmas, schema version, reopening, surviving SIGKILL)."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pluggy
import pytest
from sqlalchemy import text

from baseshift.core import hookspecs
from baseshift.core.backends import STATE
from baseshift.core.capabilities import AttemptReads
from baseshift.core.errors import BadRequest, ConfigError, Conflict, StaleState
from baseshift.core.protocols import StateStore
from baseshift.core.records import (
    AttemptRecord,
    Changes,
    JobDuration,
    JobSuccess,
    RunCursor,
    RunPage,
    RunPerformance,
    RunQuery,
    RunSnapshot,
    SuccessRates,
    WorkflowPerformance,
)
from baseshift.core.registry import Backend
from baseshift.core.settings import Settings
from baseshift.core.states import JobState, RunState
from baseshift.core.storecalls import ObservedStore
from baseshift.plugins.storage import memory as storage_memory
from baseshift.plugins.storage import sqlite as storage_sql
from baseshift.plugins.storage.memory import MemoryStateStore
from baseshift.plugins.storage.sqlite_store import SQLiteStateStore
from tests.conftest import drop_pg_schema, fresh_pg_schema
from tests.plugins.backends import build, names
from tests.plugins.store_records import a_job, a_run, an_attempt, changes

BACKENDS = names(STATE)
"""Every state store a builtin plugin offers (memory, postgres, sqlite)."""

NESTED: dict[str, Any] = {
    "none": None, "true": True, "false": False, "zero": 0, "int": -(2**53), "big": 2**70,
    "float": 0.1 + 0.2, "tiny": 5e-324, "huge": 1.7976931348623157e308, "empty": "",
    "text": "naïve ☃ \"quoted\" \\ \n", "list": [1, "two", None, [3.5, {"deep": []}]],
    "dict": {"a": {"b": {"c": [False]}}}, "empty_dict": {},
}


def make_store(backend: str, data_dir: Path, database_url: str | None = None) -> StateStore:
    return build(STATE, Settings(data_dir=data_dir, store=backend, database_url=database_url))


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateStore]:
    url = fresh_pg_schema() if request.param == "postgres" else None
    s = make_store(request.param, tmp_path / "data", url)
    await s.open()
    yield s
    await s.close()
    if url is not None:
        drop_pg_schema(url)


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLiteStateStore]:
    s = SQLiteStateStore.from_settings(Settings(data_dir=tmp_path / "data"))
    await s.open()
    yield s
    await s.close()




# --------------------------------------------------------------------- registration


@pytest.mark.parametrize("module, cls", [(storage_memory, MemoryStateStore),
                                         (storage_sql, SQLiteStateStore)])
async def test_plugin_registers_its_backend(module: Any, cls: Any) -> None:
    pm = pluggy.PluginManager("baseshift")
    pm.add_hookspecs(hookspecs)
    pm.register(module)
    pm.check_pending()
    offered = [c for group in pm.hook.register_backends(baseshift=None) for c in group]
    assert [(b.kind, b.name, Backend.of(b).load()) for b in offered] == [("state", cls.name, cls)]
    assert cls.kind == "state"


async def test_backend_satisfies_the_protocol(store: StateStore) -> None:
    assert isinstance(store, StateStore)
    assert store.name in BACKENDS


# --------------------------------------------------------------------- round trips


async def test_create_and_load_round_trip_every_field(store: StateStore) -> None:
    run = a_run(inputs=NESTED, state=RunState.RUNNING, created_at=1712345678.123456,
                started_at=1712345679.5, ended_at=1712345680.0, outputs={"total": 2.5, "x": NESTED},
                error="boom ☃")
    full = a_job("ship[3]", index=3, state=JobState.RETRYING, attempts=2, failures=1,
                 output=NESTED, error="no stock", inputs={"sku": "A-1", "qty": 2.25},
                 ready_at=1.5, started_at=2.25, ended_at=3.125, next_attempt_at=4.0625,
                 template="retrying@^1.0", handler=True)
    bare = a_job("charge")
    falsy = [a_job(f"falsy{i}", output=value) for i, value in enumerate([0, False, "", [], {}])]
    await store.create_run(run, [full, bare, *falsy])

    snap = await store.load_run("r1")

    assert snap is not None
    assert snap.run == run
    assert snap.jobs == {j.key: j for j in [full, bare, *falsy]}
    assert snap.attempts == []
    assert type(snap.run.state) is RunState and type(snap.jobs["charge"].state) is JobState
    assert [type(j.output) for j in snap.jobs.values()][2:] == [int, bool, str, list, dict]


async def test_attempt_round_trip_every_field(store: StateStore) -> None:
    await store.create_run(a_run(), [a_job("a")])
    done = an_attempt("a", 1, state=JobState.FAILED, started_at=10.5, ended_at=11.75,
                      error="exit 3", log="line 1\nline ☃ 2\n")
    running = an_attempt("a", 2)
    await store.apply(changes(done, running))

    snap = await store.load_run("r1")

    assert snap is not None and snap.attempts == [done, running]
    assert snap.attempts_of("a") == [done, running]


async def test_run_without_jobs_and_unknown_run(store: StateStore) -> None:
    await store.create_run(a_run(), [])
    assert await store.load_run("r1") == RunSnapshot(run=a_run())
    assert await store.load_run("nope") is None


# --------------------------------------------------------------------- apply


async def test_apply_updates_existing_and_inserts_new_records(store: StateStore) -> None:
    await store.create_run(a_run(), [a_job("a"), a_job("b")])
    run = a_run(state=RunState.RUNNING, started_at=101.0)
    a = a_job("a", state=JobState.RUNNING, attempts=1, started_at=101.5)
    item = a_job("b[0]", index=0, inputs={"item": "x"})
    await store.apply(changes(run, a, item, an_attempt("a", 1, started_at=101.5)))

    finished = an_attempt("a", 1, state=JobState.SUCCEEDED, started_at=101.5, ended_at=102.0)
    a_done = a_job("a", state=JobState.SUCCEEDED, attempts=1, output={"ok": True},
                   started_at=101.5, ended_at=102.0)
    await store.apply(changes(a_done, finished))

    snap = await store.load_run("r1")
    assert snap is not None
    assert snap.run == run
    assert list(snap.jobs) == ["a", "b", "b[0]"]
    assert snap.jobs["a"] == a_done and snap.jobs["b"] == a_job("b") and snap.jobs["b[0]"] == item
    assert snap.attempts == [finished]


async def test_attempts_load_ordered_by_job_key_then_number(store: StateStore) -> None:
    await store.create_run(a_run(), [a_job("b"), a_job("a")])
    await store.apply(changes(an_attempt("b", 1), an_attempt("a", 10), an_attempt("a", 2)))
    snap = await store.load_run("r1")
    assert snap is not None
    assert [(x.job_key, x.number) for x in snap.attempts] == [("a", 2), ("a", 10), ("b", 1)]
    assert list(snap.jobs) == ["b", "a"]


async def test_a_progress_read_skips_attempts_and_their_logs(store: StateStore) -> None:
    await store.create_run(a_run(), [a_job("b"), a_job("a")])
    await store.apply(changes(an_attempt("b", 1), an_attempt("a", 2)))
    snap = await store.load_run("r1", attempts=False)
    assert snap is not None
    assert (snap.run.id, list(snap.jobs), snap.attempts) == ("r1", ["b", "a"], [])
    assert await store.load_run("nope", attempts=False) is None


async def test_some_attempts_load_alone_by_job_key_and_number(store: StateStore) -> None:
    """`load_attempts` (core/capabilities.py `AttemptReads`): the attempts asked for, as
    `load_run` gives them, ordered; unknown keys, runs and repeats change nothing."""
    assert isinstance(store, AttemptReads)
    await store.create_run(a_run(), [a_job("b"), a_job("a"), a_job("c[0]", index=0)])
    await store.create_run(a_run("r2"), [a_job("a", run_id="r2")])
    done = an_attempt("a", 1, state=JobState.FAILED, started_at=10.5, ended_at=11.75,
                      error="exit 3", log="line 1\nline ☃ 2\n")
    await store.apply(changes(done, an_attempt("a", 2), an_attempt("b", 1),
                              an_attempt("c[0]", 1), an_attempt("a", 1, run_id="r2")))
    snap = await store.load_run("r1")
    assert snap is not None
    stored = {(x.job_key, x.number): x for x in snap.attempts}
    keys = [("c[0]", 1), ("a", 1), ("zz", 1), ("a", 9), ("a", 1)]
    assert await store.load_attempts("r1", keys) == [stored[("a", 1)], stored[("c[0]", 1)]]
    assert await store.load_attempts("r1", []) == []
    assert await store.load_attempts("nope", [("a", 1)]) == []
    many = [(f"x{i}", i) for i in range(1000)] + [("b", 1)]  # more than one SELECT's worth
    assert await store.load_attempts("r1", many) == [stored[("b", 1)]]
    quoted = [("a' OR '1'='1", 1), ("a", 2)]  # keys are values, never SQL
    assert await store.load_attempts("r1", quoted) == [stored[("a", 2)]]


async def test_apply_can_create_a_run_with_its_jobs(store: StateStore) -> None:
    await store.apply(changes(an_attempt("a", 1, run_id="r2"), a_job("a", run_id="r2"),
                              a_run("r2")))
    snap = await store.load_run("r2")
    assert snap is not None and list(snap.jobs) == ["a"] and len(snap.attempts) == 1


async def test_empty_store_and_empty_changes(store: StateStore) -> None:
    await store.apply(Changes())
    assert await store.list_runs() == []
    assert await store.unfinished_runs() == []


async def test_apply_writes_nothing_when_one_record_is_rejected(store: StateStore) -> None:
    await store.create_run(a_run(), [a_job("a")])
    before = await store.load_run("r1")
    orphan = an_attempt("never-created", 1)
    batch = changes(a_run(state=RunState.RUNNING), a_job("a", state=JobState.RUNNING),
                    a_job("new"), an_attempt("a", 1), orphan)

    with pytest.raises(Conflict):
        await store.apply(batch)

    assert await store.load_run("r1") == before


async def test_apply_rejects_a_job_of_an_unknown_run(store: StateStore) -> None:
    await store.create_run(a_run(), [a_job("a")])
    with pytest.raises(Conflict):
        await store.apply(changes(a_job("a", state=JobState.READY), a_job("x", run_id="ghost")))
    snap = await store.load_run("r1")
    assert snap is not None and snap.jobs["a"].state is JobState.PENDING
    assert await store.load_run("ghost") is None


async def test_create_run_rejects_a_duplicate_id(store: StateStore) -> None:
    await store.create_run(a_run(), [a_job("a")])
    with pytest.raises(Conflict):
        await store.create_run(a_run(workflow="other"), [a_job("z")])
    snap = await store.load_run("r1")
    assert snap is not None and snap.run.workflow == "orders" and list(snap.jobs) == ["a"]


async def test_create_run_is_atomic(store: StateStore) -> None:
    with pytest.raises(Conflict):
        await store.create_run(a_run(), [a_job("a"), a_job("a")])
    assert await store.load_run("r1") is None
    assert await store.list_runs() == []


# --------------------------------------------------------------------- no aliasing


async def test_mutating_records_after_create_run_does_not_change_the_store(
        store: StateStore) -> None:
    run, job = a_run(inputs={"items": [1, 2]}), a_job("a", output={"list": [1]})
    await store.create_run(run, [job])
    run.state, run.inputs["items"][0], run.inputs["new"] = RunState.FAILED, 99, True
    job.attempts, job.output["list"][0] = 7, 99

    snap = await store.load_run("r1")

    assert snap is not None
    assert snap.run == a_run(inputs={"items": [1, 2]})
    assert snap.jobs["a"] == a_job("a", output={"list": [1]})


async def test_mutating_records_after_apply_does_not_change_the_store(store: StateStore) -> None:
    await store.create_run(a_run(), [a_job("a")])
    run = a_run(outputs={"o": {"k": [1]}})
    job = a_job("a", inputs={"i": [1]})
    attempt = an_attempt("a", 1, log="x")
    await store.apply(changes(run, job, attempt))
    run.outputs["o"]["k"].append(2)  # type: ignore[index]
    job.inputs["i"].append(2)  # type: ignore[index]
    attempt.log, attempt.state = "changed", JobState.FAILED

    snap = await store.load_run("r1")

    assert snap is not None
    assert snap.run.outputs == {"o": {"k": [1]}}
    assert snap.jobs["a"].inputs == {"i": [1]}
    assert snap.attempts == [an_attempt("a", 1, log="x")]


async def test_mutating_loaded_records_does_not_change_the_store(store: StateStore) -> None:
    await store.create_run(a_run(inputs={"l": [1]}), [a_job("a", output=[{"x": 1}])])
    await store.apply(changes(an_attempt("a", 1)))
    first = await store.load_run("r1")
    assert first is not None
    first.run.inputs["l"].append(2)
    first.jobs["a"].output[0]["x"] = 2
    first.jobs.pop("a")
    first.attempts[0].number = 5
    (await store.list_runs())[0].inputs["l"].append(3)

    again = await store.load_run("r1")

    assert again is not None
    assert again.run.inputs == {"l": [1]}
    assert again.jobs["a"].output == [{"x": 1}]
    assert again.attempts == [an_attempt("a", 1)]


# --------------------------------------------------------------------- listing


async def seed_runs(store: StateStore) -> None:
    rows = [("old", "orders", RunState.COMPLETED, 1.0), ("mid", "billing", RunState.RUNNING, 2.0),
            ("tie1", "orders", RunState.FAILED, 3.0), ("tie2", "orders", RunState.INITIALIZED, 3.0),
            ("new", "orders", RunState.RUNNING, 4.0)]
    for run_id, workflow, state, created in rows:
        await store.create_run(a_run(run_id, workflow=workflow, state=state, created_at=created),
                               [])


async def test_list_runs_newest_first_ties_by_id(store: StateStore) -> None:
    await seed_runs(store)
    runs = await store.list_runs()
    assert [r.id for r in runs] == ["new", "tie2", "tie1", "mid", "old"]
    assert runs[0] == a_run("new", state=RunState.RUNNING, created_at=4.0)


async def test_list_runs_filters_and_limit(store: StateStore) -> None:
    await seed_runs(store)

    async def ids(**query: Any) -> list[str]:
        return [r.id for r in await store.list_runs(**query)]

    assert await ids(limit=2) == ["new", "tie2"]
    assert await ids(limit=0) == []
    assert await ids(workflow="billing") == ["mid"]
    assert await ids(workflow="nope") == []
    assert await ids(states=[RunState.RUNNING]) == ["new", "mid"]
    assert await ids(states=[RunState.FAILED, RunState.COMPLETED]) == ["tie1", "old"]
    assert await ids(states=[]) == []
    assert await ids(workflow="orders", states=[RunState.RUNNING, RunState.FAILED],
                     limit=1) == ["new"]


async def test_unfinished_runs_oldest_first(store: StateStore) -> None:
    await seed_runs(store)
    assert await store.unfinished_runs() == ["mid", "tie2", "new"]
    await store.apply(changes(a_run("mid", workflow="billing", state=RunState.COMPLETED,
                                    created_at=2.0)))
    assert await store.unfinished_runs() == ["tie2", "new"]


# --------------------------------------------------------------------- observed calls


async def test_every_store_operation_is_observed_by_name(store: StateStore) -> None:
    """Each operation of the StateStore contract reaches the store's listeners
    (core/storecalls.py) under its own name, with the store's name, failed ones too."""
    assert isinstance(store, ObservedStore)
    seen: list[tuple[str, str, str | None]] = []

    @contextmanager
    def listener(name: str, operation: str) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            seen.append((name, operation, type(exc).__name__))
            raise
        seen.append((name, operation, None))

    store.calls.listen("test", listener)
    await store.create_run(a_run("r1"), [a_job("a")])
    with pytest.raises(Conflict):
        await store.create_run(a_run("r1"), [])
    await store.apply(changes(an_attempt("a", 1)))
    await store.load_run("r1")
    await store.load_attempts("r1", [("a", 1)])
    await store.list_runs()
    await store.unfinished_runs()
    await store.run_states(["r1"])
    await store.query_runs(RunQuery())
    await store.count_runs_by_state()
    assert await store.claim_run("r1")
    await store.release_run("r1")
    store.calls.unlisten("test")
    await store.load_run("r1")
    assert seen == [(store.name, operation, None) for operation in (
        "create_run",)] + [(store.name, "create_run", "Conflict")] + [
        (store.name, operation, None) for operation in (
            "apply", "load_run", "load_attempts", "list_runs", "unfinished_runs",
            "run_states", "query_runs", "count_runs_by_state", "claim_run", "release_run")]


async def test_sign_ins_the_audit_data_keys_log_lines_and_retention_are_observed_too(
        store: StateStore) -> None:
    """Not only the runs': a sign-in's user lookup, the audit log, the data keys, the log
    store and retention are store operations, timed (metrics) and traced (a span under a
    request's) as the runs' are."""
    from baseshift.core.loglines import LogSearch

    seen: list[str] = []
    store.calls.listen("test", lambda name, operation: seen.append(operation))
    s: Any = store  # the abilities beside the StateStore contract, every builtin store's
    await s.get_user("nobody")
    await s.count_users()
    await s.session_active("family")
    await s.audit_head()
    await s.append_log_lines([])
    await s.search_log_lines(LogSearch())
    await s.data_key_counts()
    await s.legal_holds()
    store.calls.unlisten("test")
    assert seen == ["get_user", "count_users", "session_active", "audit_head",
                    "append_log_lines", "search_log_lines", "data_key_counts", "legal_holds"]


UNOBSERVED = {"open", "close", "backup", "restore", "retire", "database_performance",
              "explain_query", "slow_queries"}
"""A builtin store's operations not observed: its life (open, close, a backup, a restore,
retiring partitions) and the database admin's own diagnostics."""


def test_every_other_operation_of_a_builtin_store_is_observed() -> None:
    import inspect

    from baseshift.plugins.storage.pg_store import PostgresStateStore

    for kind in (MemoryStateStore, SQLiteStateStore, PostgresStateStore):
        public = {name: method for name, method in inspect.getmembers(
            kind, inspect.iscoroutinefunction) if not name.startswith("_")}
        assert UNOBSERVED & public.keys() and len(public) > 40
        unobserved = sorted(name for name, method in public.items()
                            if name not in UNOBSERVED and method.__code__.co_qualname
                            != "observed.<locals>.decorate.<locals>.call")
        assert unobserved == [], kind.__name__


# --------------------------------------------------------------------- SQLite only


async def test_sqlite_pragmas_on_every_connection(sqlite_store: SQLiteStateStore) -> None:
    expected = {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1,
                "busy_timeout": 5000}
    with sqlite_store.engine.connect() as one, sqlite_store.engine.connect() as two:
        for conn in (one, two):
            found = {p: conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in expected}
            assert found == expected


async def test_sqlite_reopened_file_sees_the_data(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "made" / "by" / "open")
    first = SQLiteStateStore.from_settings(settings)
    await first.open()
    await first.create_run(a_run(outputs={"x": NESTED}), [a_job("a")])
    await first.apply(changes(an_attempt("a", 1, log="kept")))
    await first.close()
    assert (settings.data_dir / "baseshift.db").is_file()

    second = SQLiteStateStore.from_settings(settings)
    await second.open()
    snap = await second.load_run("r1")
    await second.close()

    assert snap is not None and snap.run.outputs == {"x": NESTED}
    assert snap.attempts == [an_attempt("a", 1, log="kept")]


async def test_sqlite_records_and_checks_the_schema_version(tmp_path: Path) -> None:
    s = SQLiteStateStore.from_settings(Settings(data_dir=tmp_path))
    await s.open()
    with s.engine.begin() as conn:
        assert conn.scalar(text("SELECT value FROM meta WHERE key = 'schema_version'")) == "1"
        conn.execute(text("UPDATE meta SET value = '999' WHERE key = 'schema_version'"))
    await s.close()

    with pytest.raises(ConfigError, match="schema version 999"):
        await SQLiteStateStore.from_settings(Settings(data_dir=tmp_path)).open()


async def test_sqlite_in_memory_url_once_opened() -> None:
    s = SQLiteStateStore("sqlite://")
    with pytest.raises(RuntimeError, match="not open"):
        await s.apply(changes(a_run()))
    await s.open()
    await s.create_run(a_run(), [a_job("a")])
    await s.apply(changes(an_attempt("a", 1)))
    snap = await s.load_run("r1")
    await s.close()
    assert snap is not None and snap.run == a_run() and len(snap.attempts) == 1


CHILD = textwrap.dedent("""
    import asyncio, sys, time
    from baseshift.core.records import AttemptRecord, Changes, JobRecord, RunRecord, RunSnapshot
    from baseshift.core.states import JobState, RunState
    from baseshift.plugins.storage.sqlite_store import SQLiteStateStore

    async def main() -> None:
        store = SQLiteStateStore(sys.argv[1])
        await store.open()
        run = RunRecord("r1", "w", "1", "source", "path", {"n": 1}, created_at=1.0)
        await store.create_run(run, [JobRecord("r1", "a", "a")])
        run.state, batch = RunState.RUNNING, Changes()
        batch.run(run)
        batch.job(JobRecord("r1", "a", "a", state=JobState.RUNNING, attempts=1))
        batch.attempt(AttemptRecord("r1", "a", 1, log="before kill"))
        await store.apply(batch)
        print("written", flush=True)
        time.sleep(60)

    asyncio.run(main())
""")


@pytest.mark.slow
async def test_sqlite_apply_survives_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "baseshift.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD, f"sqlite:///{db}"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
    finally:
        child.send_signal(signal.SIGKILL)
        _, errors = child.communicate(timeout=30)
    assert line == "written\n", errors
    assert child.returncode == -signal.SIGKILL
    # The commit was never checkpointed: reading it back exercises WAL recovery.
    assert Path(f"{db}-wal").stat().st_size > 0

    store = SQLiteStateStore(f"sqlite:///{db}")
    await store.open()
    snap = await store.load_run("r1")
    await store.close()

    assert snap is not None and snap.run.state is RunState.RUNNING
    assert snap.jobs["a"].state is JobState.RUNNING and snap.jobs["a"].attempts == 1
    assert snap.attempts == [AttemptRecord(run_id="r1", job_key="a", number=1,
                                           log="before kill")]


async def test_sqlite_write_failure_is_a_store_error_naming_the_file(
        sqlite_store: SQLiteStateStore) -> None:
    import sqlite3

    from baseshift.core.errors import StoreError

    await sqlite_store.create_run(a_run(), [a_job("a")])
    with sqlite3.connect(str(sqlite_store.url.database)) as other:
        other.execute("DROP TABLE attempts")
    with pytest.raises(StoreError, match="applying changes failed, nothing was written") as info:
        await sqlite_store.apply(changes(an_attempt("a", 1)))
    assert info.value.hint == f"check the database file {sqlite_store.url.database}"


# --------------------------------------------------------------------- run queries


async def page_ids(store: StateStore, **fields: Any) -> list[list[str]]:
    """Every page of a query, followed cursor by cursor, as lists of run ids."""
    pages, cursor = [], None
    while True:
        page = await store.query_runs(RunQuery(cursor=cursor, **fields))
        pages.append([r.id for r in page.runs])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


async def test_query_runs_newest_first_ties_by_id(store: StateStore) -> None:
    await seed_runs(store)
    page = await store.query_runs(RunQuery())
    assert [r.id for r in page.runs] == ["new", "tie2", "tie1", "mid", "old"]
    assert page.next_cursor is None
    assert page.runs[0] == a_run("new", state=RunState.RUNNING, created_at=4.0)


async def test_query_runs_pages_follow_cursors_to_the_end(store: StateStore) -> None:
    await seed_runs(store)
    assert await page_ids(store, limit=2) == [["new", "tie2"], ["tie1", "mid"], ["old"]]
    assert await page_ids(store, limit=1) == [["new"], ["tie2"], ["tie1"], ["mid"], ["old"]]
    assert await page_ids(store, limit=5) == [["new", "tie2", "tie1", "mid", "old"]]


async def test_query_runs_filters(store: StateStore) -> None:
    await seed_runs(store)

    async def ids(**fields: Any) -> list[str]:
        return [r.id for r in (await store.query_runs(RunQuery(**fields))).runs]

    assert await ids(workflow="billing") == ["mid"]
    assert await ids(workflow="nope") == []
    assert await ids(states=(RunState.RUNNING,)) == ["new", "mid"]
    assert await ids(states=(RunState.FAILED, RunState.COMPLETED)) == ["tie1", "old"]
    assert await ids(states=()) == []
    assert await ids(created_after=2.0) == ["new", "tie2", "tie1", "mid"]
    assert await ids(created_before=3.0) == ["mid", "old"]
    assert await ids(created_after=3.0, created_before=4.0) == ["tie2", "tie1"]
    assert await ids(workflow="orders", states=(RunState.RUNNING, RunState.FAILED),
                     created_before=4.0) == ["tie1"]
    assert await page_ids(store, workflow="orders", limit=2) == [["new", "tie2"],
                                                                ["tie1", "old"]]


async def test_query_runs_cursor_ignores_runs_inserted_meanwhile(store: StateStore) -> None:
    await seed_runs(store)
    first = await store.query_runs(RunQuery(limit=2))
    await store.create_run(a_run("newer", created_at=5.0), [])
    await store.create_run(a_run("tie0", created_at=3.0), [])
    await store.create_run(a_run("tie3", created_at=3.0), [])
    rest = await store.query_runs(RunQuery(limit=10, cursor=first.next_cursor))
    # tie3 sorts above the cursor (tie2): it belongs to a page already read, not this one.
    assert [r.id for r in rest.runs] == ["tie1", "tie0", "mid", "old"]


async def test_query_runs_on_an_empty_store(store: StateStore) -> None:
    assert await store.query_runs(RunQuery()) == RunPage(runs=[], next_cursor=None)


@pytest.mark.parametrize("cursor", ["", "not base64!", "bm9wZQ", "W10", "WzEsMl0",
                                    'WyJ4IiwieSJd', "WzEuMCwieSIsM10", "W051bGwsIngiXQ"])
def test_a_malformed_cursor_is_a_bad_request(cursor: str) -> None:
    with pytest.raises(BadRequest, match="'cursor'"):
        RunQuery(cursor=cursor)


@pytest.mark.parametrize("limit", [0, -1, 501])
def test_a_limit_out_of_range_is_a_bad_request(limit: int) -> None:
    with pytest.raises(BadRequest, match="'limit' is"):
        RunQuery(limit=limit)


def test_a_cursor_round_trips_exactly() -> None:
    cursor = RunCursor(1712345678.1234567, "18f-ab☃")
    assert RunCursor.decode(cursor.encode()) == cursor
    assert "=" not in cursor.encode()


async def test_count_runs_by_state(store: StateStore) -> None:
    assert await store.count_runs_by_state() == dict.fromkeys(RunState, 0)
    await seed_runs(store)
    counts = await store.count_runs_by_state()
    assert counts == {RunState.INITIALIZED: 1, RunState.RUNNING: 2, RunState.COMPLETED: 1,
                      RunState.FAILED: 1, RunState.CANCELLED: 0}
    assert list(counts) == list(RunState)
    orders = await store.count_runs_by_state("orders")
    assert orders[RunState.RUNNING] == 1 and sum(orders.values()) == 4
    assert sum((await store.count_runs_by_state("nope")).values()) == 0


# --------------------------------------------------------------------- analytics


async def seed_analytics(store: StateStore) -> None:
    """Two finished runs of `orders` and one running, one failed run of `billing`.

    Durations of logical jobs (ended - started) are chosen so averages are exact binary
    fractions; fan-out items, skipped and unfinished jobs must not be counted.
    """
    S, F = JobState.SUCCEEDED, JobState.FAILED
    await store.create_run(a_run("o1", state=RunState.COMPLETED, created_at=10.0,
                                 started_at=10.0, ended_at=20.0), [
        a_job("a", "o1", state=S, started_at=10.0, ended_at=12.0),
        a_job("b", "o1", state=S, started_at=12.0, ended_at=13.0),
        a_job("b[0]", "o1", index=0, state=S, started_at=12.0, ended_at=12.5),
        a_job("b[1]", "o1", index=1, state=F, started_at=12.0, ended_at=13.0),
        a_job("on_fail", "o1", state=JobState.SKIPPED, handler=True)])
    await store.create_run(a_run("o2", state=RunState.FAILED, created_at=30.0,
                                 started_at=31.0, ended_at=35.0), [
        a_job("a", "o2", state=F, started_at=31.0, ended_at=35.0),
        a_job("b", "o2", state=JobState.CANCELLED, ended_at=35.0)])
    await store.create_run(a_run("o3", state=RunState.RUNNING, created_at=40.0,
                                 started_at=40.0), [
        a_job("a", "o3", state=S, started_at=40.0, ended_at=40.5),
        a_job("b", "o3", state=JobState.RETRYING, started_at=40.5, failures=1),
        a_job("c", "o3", state=JobState.RUNNING, started_at=40.5),
        a_job("d", "o3", state=JobState.READY), a_job("e", "o3")])
    await store.create_run(a_run("b1", workflow="billing", state=RunState.FAILED,
                                 created_at=50.0, started_at=50.0, ended_at=51.0), [
        a_job("a", "b1", state=F, started_at=50.0, ended_at=51.0)])


async def test_workflow_performance_of_a_finished_run(store: StateStore) -> None:
    await seed_analytics(store)
    perf = await store.workflow_performance("o1")
    assert perf == RunPerformance(
        run_id="o1", workflow="orders", status=RunState.COMPLETED, total_jobs=3,
        completed_jobs=2, failed_jobs=0, in_progress_jobs=0, pending_jobs=0, skipped_jobs=1,
        cancelled_jobs=0, average_job_duration=1.5, total_workflow_duration=10.0,
        start_time=10.0, end_time=20.0)


async def test_workflow_performance_of_a_running_run(store: StateStore) -> None:
    await seed_analytics(store)
    perf = await store.workflow_performance("o3")
    assert perf is not None
    assert (perf.status, perf.total_jobs, perf.completed_jobs, perf.in_progress_jobs,
            perf.pending_jobs, perf.average_job_duration) == (RunState.RUNNING, 5, 1, 2, 2, 0.5)
    assert perf.end_time is None
    assert perf.total_workflow_duration is not None and perf.total_workflow_duration > 0


async def test_workflow_performance_of_an_unknown_or_unstarted_run(store: StateStore) -> None:
    assert await store.workflow_performance("nope") is None
    await store.create_run(a_run(), [])
    perf = await store.workflow_performance("r1")
    assert perf is not None and perf.total_jobs == 0 and perf.average_job_duration is None
    assert perf.total_workflow_duration is None and perf.start_time is None


async def test_workflow_performance_summary(store: StateStore) -> None:
    await seed_analytics(store)
    orders = await store.workflow_performance_summary("orders")
    assert orders == WorkflowPerformance(
        workflow="orders", runs=3, completed_runs=1, failed_runs=1, cancelled_runs=0,
        unfinished_runs=1, average_run_duration=7.0, total_jobs=10, completed_jobs=3,
        failed_jobs=1, average_job_duration=1.875, first_start=10.0, last_end=35.0)
    everything = await store.workflow_performance_summary()
    assert (everything.workflow, everything.runs, everything.failed_runs,
            everything.total_jobs, everything.average_run_duration) == (None, 4, 2, 11, 5.0)
    window = await store.workflow_performance_summary("orders", since=30.0, until=40.0)
    assert (window.runs, window.failed_runs, window.total_jobs) == (1, 1, 2)
    empty = await store.workflow_performance_summary("nope")
    assert empty == WorkflowPerformance("nope", 0, 0, 0, 0, 0, None, 0, 0, 0, None, None, None)


async def test_job_success_rate(store: StateStore) -> None:
    await seed_analytics(store)
    rates = await store.job_success_rate()
    assert rates.jobs == [JobSuccess("a", 4, 2, 2), JobSuccess("b", 1, 1, 0)]
    assert rates.overall == JobSuccess("*", 5, 3, 2)
    assert rates.jobs[0].success_rate == 0.5 and rates.overall.success_rate == 0.6
    orders = await store.job_success_rate("orders", since=20.0)
    assert orders.jobs == [JobSuccess("a", 2, 1, 1)]
    none = await store.job_success_rate(until=0.0)
    assert none == SuccessRates([], JobSuccess("*", 0, 0, 0))
    assert none.overall.success_rate is None


async def test_average_job_duration(store: StateStore) -> None:
    await seed_analytics(store)
    assert await store.average_job_duration() == [
        JobDuration("a", 4, 1.875, 0.5, 4.0, 4.0), JobDuration("b", 1, 1.0, 1.0, 1.0, 1.0)]
    assert await store.average_job_duration("billing") == [
        JobDuration("a", 1, 1.0, 1.0, 1.0, 1.0)]
    assert await store.average_job_duration("orders", since=10.0, until=30.0) == [
        JobDuration("a", 1, 2.0, 2.0, 2.0, 2.0), JobDuration("b", 1, 1.0, 1.0, 1.0, 1.0)]
    assert await store.average_job_duration(since=100.0) == []


async def test_p95_is_the_nearest_rank(store: StateStore) -> None:
    jobs = [a_job(f"j{i}", state=JobState.SUCCEEDED, started_at=0.0, ended_at=float(d))
            for i, d in enumerate([7, 1, 3, 20, 5, 2, 9, 4, 6, 8, 10, 11, 12, 13, 14, 15,
                                   16, 17, 18, 19, 100])]
    for job in jobs:
        job.name = "x"
    await store.create_run(a_run(), jobs)
    [x] = await store.average_job_duration()
    # 21 durations: rank ceil(0.95 * 21) = 20 is the second largest.
    assert (x.count, x.minimum, x.maximum, x.p95) == (21, 1.0, 100.0, 20.0)


# --------------------------------------------------------------------- shared by processes


@pytest.fixture(params=["sqlite", "postgres"])
async def two_stores(request: pytest.FixtureRequest, tmp_path: Path
                     ) -> AsyncIterator[tuple[StateStore, StateStore]]:
    """Two stores on one database, as two processes would have."""
    url = fresh_pg_schema() if request.param == "postgres" else None
    first = make_store(request.param, tmp_path / "data", url)
    second = make_store(request.param, tmp_path / "data", url)
    await first.open()
    await second.open()
    yield first, second
    await second.close()
    await first.close()
    if url is not None:
        drop_pg_schema(url)


async def test_two_processes_cannot_both_move_the_same_job(
        two_stores: tuple[StateStore, StateStore]) -> None:
    store, other = two_stores
    await store.create_run(a_run("r1"), [a_job("a", "r1")])
    await store.create_run(a_run("r2"), [a_job("b", "r2")])
    mine, theirs = Changes(), Changes()
    mine.moved_job(a_job("a", "r1", state=JobState.READY), JobState.PENDING)
    theirs.moved_job(a_job("a", "r1", state=JobState.CANCELLED), JobState.PENDING)
    theirs.moved_job(a_job("b", "r2", state=JobState.READY), JobState.PENDING)
    theirs.attempt(an_attempt("b", 1, "r2"))
    await store.apply(mine)
    with pytest.raises(StaleState) as info:
        await other.apply(theirs)
    assert info.value.run_ids == ("r1",)
    one, two = await store.load_run("r1"), await store.load_run("r2")
    assert one is not None and one.jobs["a"].state is JobState.READY
    assert two is not None and two.jobs["b"].state is JobState.PENDING  # nothing written
    assert two.attempts == []


async def test_a_run_transition_is_guarded_too(
        two_stores: tuple[StateStore, StateStore]) -> None:
    store, other = two_stores
    await store.create_run(a_run("r1"), [])
    first, second = Changes(), Changes()
    first.moved_run(a_run("r1", state=RunState.CANCELLED), RunState.INITIALIZED)
    second.moved_run(a_run("r1", state=RunState.RUNNING), RunState.INITIALIZED)
    await store.apply(first)
    with pytest.raises(StaleState):
        await other.apply(second)
    assert (await store.run_states(["r1"])) == {"r1": RunState.CANCELLED}


async def test_records_new_in_a_batch_are_never_stale(
        two_stores: tuple[StateStore, StateStore]) -> None:
    store, _ = two_stores
    await store.create_run(a_run("r1"), [a_job("work", "r1")])
    batch = Changes()
    batch.moved_job(a_job("work[0]", "r1", state=JobState.READY, index=0), JobState.PENDING)
    await store.apply(batch)
    snapshot = await store.load_run("r1")
    assert snapshot is not None and snapshot.jobs["work[0]"].state is JobState.READY
