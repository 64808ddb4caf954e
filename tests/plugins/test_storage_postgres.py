"""The PostgreSQL store's own promises, on the real server: migrations from every earlier
version, monthly partitions, guarded transitions, indexes used, clear connection errors,
backup and restore to an identical state, and retention by whole months."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from baseshift.core.errors import ConfigError
from baseshift.core.records import RunSnapshot
from baseshift.core.settings import Settings
from baseshift.core.states import RunState
from baseshift.core.templatestore import parse_document
from baseshift.plugins.storage.pg_connect import PgTarget
from baseshift.plugins.storage.pg_schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Month,
    ensure_partitions,
    migrate,
    partitions,
)
from baseshift.plugins.storage.pg_store import PostgresStateStore
from baseshift.plugins.templates.pg_store import PostgresTemplateStore
from tests.conftest import CliResult
from tests.plugins.store_records import a_job, a_run, an_attempt, changes


def sql(url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with PgTarget.parse(url).connect(autocommit=True) as conn:
        cur = conn.execute(query.encode(), params or None)
        return cur.fetchall() if cur.description else []


def epoch(year: int, month: int, day: int = 15) -> float:
    return dt.datetime(year, month, day, tzinfo=dt.UTC).timestamp()


# --------------------------------------------------------------------- migrations

SAMPLE_AT = {  # rows valid at each version, written before upgrading
    1: "INSERT INTO runs (id, workflow, version, source, path, inputs, state, created_at) "
       "VALUES ('old', 'orders', '1.0.0', 'job a {}', 'w.bsw', '{\"n\": 1}', 'COMPLETED', 100);"
       "INSERT INTO jobs (run_id, key, name, state, attempts, failures, output, handler) "
       "VALUES ('old', 'a', 'a', 'SUCCEEDED', 1, 0, '[1, 2]', false);"
       "INSERT INTO attempts (run_id, job_key, number, state, started_at, log) "
       "VALUES ('old', 'a', 1, 'SUCCEEDED', 101, 'done')",
}


@pytest.mark.parametrize("start", range(SCHEMA_VERSION))
async def test_open_upgrades_a_database_from_every_earlier_version(pg_url: str,
                                                                   start: int) -> None:
    with PgTarget.parse(pg_url).connect(autocommit=True) as conn:
        assert migrate(conn, target=start) == 0
        for version in range(1, start + 1):
            if version in SAMPLE_AT:
                conn.execute(SAMPLE_AT[version].encode())
    store = PostgresStateStore(pg_url)
    await store.open()
    try:
        snapshot = await store.load_run("old")
    finally:
        await store.close()
    assert sql(pg_url, "SELECT value FROM meta WHERE key = 'schema_version'") == [
        (str(SCHEMA_VERSION),)]
    if start >= 1:
        assert snapshot is not None
        assert snapshot.run.state is RunState.COMPLETED
        assert snapshot.jobs["a"].output == [1, 2]
        assert [a.log for a in snapshot.attempts] == ["done"]
    assert sql(pg_url, "SELECT count(*) FROM job_queue") == [(0,)]  # every table exists
    assert sql(pg_url, "SELECT count(*) FROM documents") == [(0,)]


async def test_a_newer_database_is_refused_with_a_clear_error(pg_url: str) -> None:
    with PgTarget.parse(pg_url).connect(autocommit=True) as conn:
        migrate(conn)
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(ConfigError, match="schema version 99; this Base Shift knows versions "
                       f"up to {SCHEMA_VERSION}"):
        await PostgresStateStore(pg_url).open()


def test_migrations_are_only_ever_appended() -> None:
    """Released migrations never change: a database at version N has run exactly these."""
    assert len(MIGRATIONS) == SCHEMA_VERSION >= 10
    assert "CREATE TABLE runs" in MIGRATIONS[0] and "CREATE TABLE job_queue" in MIGRATIONS[1]
    assert "CREATE TABLE documents" in MIGRATIONS[3]
    assert "CREATE TABLE users" in MIGRATIONS[4]
    assert "CREATE TABLE IF NOT EXISTS audit_log" in MIGRATIONS[5]
    assert "CREATE TABLE data_keys" in MIGRATIONS[6]
    assert "CREATE TABLE run_holds" in MIGRATIONS[7]
    assert any("CREATE TABLE worker_heartbeats" in m for m in MIGRATIONS[8:])
    # the log store's, one entry of its own (its place depends on what else was appended)
    assert sum("CREATE TABLE log_lines" in m for m in MIGRATIONS[8:]) == 1


# --------------------------------------------------------------------- partitions


async def test_open_creates_this_month_and_three_ahead(pg_store: PostgresStateStore,
                                                       pg_url: str) -> None:
    month = Month.of(time.time())
    expected = []
    for _ in range(4):
        expected += [f"attempts_{month.suffix()}", f"runs_{month.suffix()}"]
        month = month.next()
    with pg_store.target.connect() as conn:
        assert sorted(partitions(conn)) == sorted(expected)
    await pg_store.create_run(a_run("now", created_at=time.time()), [a_job("a", "now")])
    assert sql(pg_url, f"SELECT id FROM runs_{Month.of(time.time()).suffix()}") == [("now",)]


async def test_a_partition_made_later_takes_its_rows_from_the_default(
        pg_store: PostgresStateStore, pg_url: str) -> None:
    far = epoch(2031, 7)
    await pg_store.create_run(a_run("far", created_at=far), [a_job("a", "far")])
    await pg_store.apply(changes(an_attempt("a", 1, "far", started_at=far + 1)))
    assert sql(pg_url, "SELECT id FROM runs_default") == [("far",)]
    with pg_store.target.connect(autocommit=True) as conn:
        ensure_partitions(conn, far, ahead=0)
    assert sql(pg_url, "SELECT id FROM runs_default") == []
    assert sql(pg_url, "SELECT id FROM runs_y2031m07") == [("far",)]
    assert sql(pg_url, "SELECT job_key FROM attempts_y2031m07") == [("a",)]
    snapshot = await pg_store.load_run("far")
    assert snapshot is not None and [a.job_key for a in snapshot.attempts] == ["a"]


def test_month_bounds_are_calendar_months_in_utc() -> None:
    december = Month.of(epoch(2026, 12, 31))
    assert (december.start, december.end) == (epoch(2026, 12, 1), epoch(2027, 1, 1))
    assert december.next() == Month(2027, 1) and december.suffix() == "y2026m12"


# --------------------------------------------------------------------- guarded transitions


async def test_claims_are_exclusive_across_connections(pg_store: PostgresStateStore,
                                                       pg_url: str) -> None:
    other = PostgresStateStore(pg_url)
    await other.open()
    try:
        assert await pg_store.claim_run("r1")
        assert not await pg_store.claim_run("r1")
        assert not await other.claim_run("r1")
        await pg_store.release_run("r1")
        assert await other.claim_run("r1")
        assert await other.lead("cron") and await other.lead("cron")
        assert not await pg_store.lead("cron")
    finally:
        await other.close()  # a closed session frees its claims, as a dead process would
    # the server frees a closed session's locks a moment after the client has gone
    for _ in range(100):
        if await pg_store.lead("cron"):
            break
        await asyncio.sleep(0.02)
    assert await pg_store.claim_run("r1")
    assert await pg_store.lead("cron")


# --------------------------------------------------------------------- indexes


@pytest.mark.parametrize(("query", "index"), [
    ("SELECT * FROM runs WHERE workflow = 'w' ORDER BY created_at DESC, id DESC LIMIT 50",
     "ix_runs_workflow_created_id"),
    ("SELECT * FROM runs WHERE state = 'RUNNING' ORDER BY created_at DESC, id DESC LIMIT 50",
     "ix_runs_state_created_id"),
    ("SELECT * FROM runs WHERE id = 'r1'", "ix_runs_id"),
    ("SELECT * FROM jobs WHERE run_id = 'r1' ORDER BY seq", "ix_jobs_run_seq"),
    ("SELECT id FROM job_queue WHERE state = 'queued' ORDER BY id LIMIT 16 "
     "FOR UPDATE SKIP LOCKED", "ix_job_queue_queued"),
])
async def test_hot_queries_use_their_indexes(pg_store: PostgresStateStore, query: str,
                                             index: str) -> None:
    with pg_store.target.connect() as conn:
        conn.execute("SET enable_seqscan = off")  # tiny tables: ask whether an index fits
        plan = "\n".join(str(r[0]) for r in conn.execute(f"EXPLAIN {query}".encode()))
        # on a partitioned table each partition scans its own copy of the index
        copies = [str(r[0]) for r in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s", (index,))]
    assert any(f"using {name} " in plan for name in [index, *copies]), plan


# --------------------------------------------------------------------- errors


async def test_an_unreachable_server_is_one_clear_error() -> None:
    store = PostgresStateStore("postgresql://postgres:s3cret@127.0.0.1:1/test")
    with pytest.raises(ConfigError) as info:
        await store.open()
    assert str(info.value).startswith(
        "cannot connect to PostgreSQL at postgresql://postgres:***@127.0.0.1:1/test: ")
    assert "s3cret" not in str(info.value)


@pytest.mark.slow
@pytest.mark.parametrize("command", [("runs",), ("serve", "--port", "8799"), ("worker",)])
def test_the_cli_reports_an_unreachable_database_without_a_traceback(
        run_cli: Callable[..., CliResult], command: tuple[str, ...]) -> None:
    result = run_cli(*command, env={"BASESHIFT_STORE": "postgres",
                                  "BASESHIFT_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"})
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: cannot connect to PostgreSQL at postgresql://nobody@127.0.0.1:1/x: ")
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://127.0.0.1/x", "is not a PostgreSQL URL"),
    ("postgresql://127.0.0.1/x?schema=drop;table", "is not a plain identifier"),
])
def test_bad_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PgTarget.parse(url)


def test_postgres_without_a_url_says_what_to_set() -> None:
    with pytest.raises(ConfigError, match="the postgres backends need database_url"):
        PostgresStateStore.from_settings(Settings(store="postgres"))


# --------------------------------------------------------------------- backup and restore


async def snapshots(pg_store: PostgresStateStore) -> dict[str, RunSnapshot | None]:
    return {r.id: await pg_store.load_run(r.id) for r in await pg_store.list_runs(limit=100)}


async def test_restore_brings_back_the_identical_state(pg_store: PostgresStateStore,
                                                       pg_url: str, tmp_path: Path) -> None:
    for n in range(3):
        run = a_run(f"r{n}", created_at=time.time() + n, outputs={"n": n, "text": "é\0x"})
        await pg_store.create_run(run, [a_job("a", run.id), a_job("b", run.id)])
        await pg_store.apply(changes(an_attempt("a", 1, run.id, log="line\n" * 3)))
    templates = PostgresTemplateStore(pg_store.target)
    await templates.open()
    await templates.publish(parse_document({"templateId": "greet", "version": "1.0.0", "steps": [
        {"name": "say", "type": "shell", "config": {"command": "echo hi"}}]}))
    before = await snapshots(pg_store)
    assert await pg_store.backup(tmp_path / "state.dump") == 3
    await templates.delete("greet", "1.0.0")

    await pg_store.create_run(a_run("later", created_at=time.time()), [a_job("a", "later")])
    await pg_store.apply(changes(a_run("r0", state=RunState.FAILED, created_at=before["r0"]
                                    .run.created_at)))  # type: ignore[union-attr]
    assert await pg_store.restore(tmp_path / "state.dump") == 3
    assert await snapshots(pg_store) == before
    assert [d.ref for d in await templates.list()] == ["greet@1.0.0"]
    await templates.close()
    await pg_store.create_run(a_run("after", created_at=time.time()), [a_job("a", "after")])


async def test_a_bad_backup_file_changes_nothing(pg_store: PostgresStateStore,
                                                 tmp_path: Path) -> None:
    await pg_store.create_run(a_run("r1", created_at=time.time()), [a_job("a", "r1")])
    bad = tmp_path / "bad.dump"
    bad.write_text("not a dump")
    with pytest.raises(ConfigError, match="is not a Base Shift PostgreSQL backup"):
        await pg_store.restore(bad)
    assert [r.id for r in await pg_store.list_runs()] == ["r1"]


async def test_a_backup_never_overwrites_a_file(pg_store: PostgresStateStore,
                                                tmp_path: Path) -> None:
    (tmp_path / "x.dump").write_text("keep me")
    with pytest.raises(Exception, match="already exists"):
        await pg_store.backup(tmp_path / "x.dump")
    assert (tmp_path / "x.dump").read_text() == "keep me"


# --------------------------------------------------------------------- retention


async def test_retention_archives_then_drops_whole_old_months(pg_store: PostgresStateStore,
                                                              pg_url: str,
                                                              tmp_path: Path) -> None:
    old, recent = epoch(2024, 3), time.time()
    await pg_store.create_run(a_run("old", created_at=old, state=RunState.COMPLETED),
                           [a_job("a", "old")])
    await pg_store.apply(changes(an_attempt("a", 1, "old", started_at=old + 5, log="hi")))
    await pg_store.create_run(a_run("stuck", created_at=epoch(2024, 4), state=RunState.RUNNING),
                           [a_job("a", "stuck")])
    await pg_store.create_run(a_run("new", created_at=recent), [a_job("a", "new")])
    with pg_store.target.connect(autocommit=True) as conn:
        for month in (old, epoch(2024, 4)):
            ensure_partitions(conn, month, ahead=0)

    cutoff = epoch(2025, 1)
    planned = await pg_store.retire(cutoff, None, dry_run=True)
    assert [(r.partition, r.runs, r.action) for r in planned] == [
        ("runs_y2024m03", 1, "would drop"), ("runs_y2024m04", 1, "kept: 1 unfinished run(s)")]
    assert await pg_store.load_run("old") is not None

    done = await pg_store.retire(cutoff, tmp_path / "archive", dry_run=False)
    assert [(r.partition, r.action) for r in done] == [
        ("runs_y2024m03", "archived and dropped"), ("runs_y2024m04", "kept: 1 unfinished run(s)")]
    assert await pg_store.load_run("old") is None
    assert await pg_store.load_run("stuck") is not None
    assert await pg_store.load_run("new") is not None
    folder = tmp_path / "archive" / "runs_y2024m03"
    rows = {kind: [json.loads(line) for line in (folder / f"{kind}.jsonl").read_text()
                   .splitlines()] for kind in ("runs", "jobs", "attempts")}
    assert [r["id"] for r in rows["runs"]] == ["old"]
    assert [(j["run_id"], j["key"]) for j in rows["jobs"]] == [("old", "a")]
    assert [a["log"] for a in rows["attempts"]] == ["hi"]
    names = sql(pg_url, "SELECT name, rows FROM retired_partitions")
    assert names == [("runs_y2024m03", 1)]
    assert "attempts_y2024m03" not in sql(pg_url, "SELECT string_agg(relname, ',') FROM "
                                          "pg_class WHERE relname LIKE 'attempts_y2024%'")[0]
    assert sql(pg_url, "SELECT count(*) FROM attempts WHERE run_id = 'old'") == [(0,)]


@pytest.mark.slow
def test_retention_command_asks_for_confirmation(run_cli: Callable[..., CliResult],
                                                 pg_url: str) -> None:
    env = {"BASESHIFT_STORE": "postgres", "BASESHIFT_DATABASE_URL": pg_url}
    refused = run_cli("retention", "--older-than", "365", env=env)
    assert refused.exit_code == 2 and "--dry-run" in refused.stderr
    looked = run_cli("retention", "--older-than", "365", "--dry-run", env=env)
    assert looked.exit_code == 0, looked.stderr
    assert "nothing to retire" in looked.stdout
    sqlite = run_cli("retention", "--older-than", "30", "--yes")
    assert sqlite.exit_code != 0 and "the 'sqlite' store has no retention" in sqlite.stderr


async def test_connections_probe_a_silent_peer_with_tcp_keepalives(pg_url: str) -> None:
    """A LISTEN connection waits in silence: without keepalives a server that vanished
    without a FIN is noticed after the system's two hours. The URL can still set its own."""
    from baseshift.plugins.storage.pg_connect import PgTarget

    conn = await PgTarget.parse(pg_url).connect_async(autocommit=True)
    try:
        params = conn.info.get_parameters()
        assert (params.get("keepalives_idle"), params.get("keepalives_count")) == ("30", "3")
    finally:
        await conn.close()
    own = await PgTarget.parse(pg_url + "&keepalives_idle=7").connect_async(autocommit=True)
    try:
        assert own.info.get_parameters().get("keepalives_idle") == "7"
    finally:
        await own.close()


async def test_retention_keeps_a_month_holding_a_run_on_legal_hold(
        pg_store: PostgresStateStore) -> None:
    old = epoch(2024, 3)
    await pg_store.create_run(a_run("held", created_at=old, state=RunState.COMPLETED),
                              [a_job("a", "held")])
    await pg_store.set_legal_hold("held", True)
    with pg_store.target.connect(autocommit=True) as conn:
        ensure_partitions(conn, old, ahead=0)
    done = await pg_store.retire(epoch(2025, 1), None, dry_run=False)
    assert [(r.partition, r.action) for r in done] == [
        ("runs_y2024m03", "kept: 1 run(s) on legal hold")]
    assert await pg_store.load_run("held") is not None
