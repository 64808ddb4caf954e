"""The database admin API (plugins/database/): performance, slowest statements and query
plans of the store's database, on SQLite and PostgreSQL; a query that is not one read-only
statement is refused (422, never 500) and leaves every row where it was; every explain
is audited."""
from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.audit import AuditQuery
from baseshift.plugins.storage.pg_connect import PgTarget

PROBLEM = "application/problem+json"
PERFORMANCE = "/api/v1/database/performance"
SLOW = "/api/v1/database/slow_queries"
EXPLAIN = "/api/v1/database/optimize_query"
STORES = ["sqlite", "postgres"]

ATTACKS = [
    {"query": "DELETE FROM runs"},
    {"query": "SELECT 1; DROP TABLE runs"},
    {"query": "SELECT 1; DROP TABLE runs", "analyze": True},
    {"query": "EXPLAIN ANALYZE DELETE FROM runs"},
    {"query": "WITH d AS (DELETE FROM runs RETURNING *) SELECT * FROM d", "analyze": True},
    {"query": "WITH d AS (DELETE FROM runs RETURNING *) SELECT * FROM d"},
    {"query": "SELECT * FROM runs FOR UPDATE"},
    {"query": "SELECT * INTO stolen FROM runs"},
    {"query": "UPDATE runs SET state = 'failed'"},
    {"query": "DROP TABLE runs"},
    {"query": "  -- hello\n DELETE FROM runs"},
    {"query": "SELECT 1 /* ; */ ; DELETE FROM runs"},
    {"query": "SELECT pg_terminate_backend(pg_backend_pid())", "analyze": True},
    {"query": "select 1;\nvacuum"},
    {"query": ""},
    {"query": 42},
    {"query": "SELECT 1", "analyze": "yes"},
    {"query": "SELECT 1", "extra": 1},
    {},
]
"""Bodies the API must refuse without touching a row."""


@asynccontextmanager
async def admin_client(make_client: Callable[..., Any], store: str, pg_url: str,
                       role: str = "admin") -> AsyncIterator[tuple[BaseShift, httpx.AsyncClient]]:
    settings: dict[str, Any] = {"store": store}
    if store == "postgres":
        settings["database_url"] = pg_url
    async with make_client(role=role, **settings) as (bs, client):
        started = await client.post("/api/v1/workflows", json={"workflow": "hello"})
        assert started.status_code in (201, 403), started.text
        yield bs, client


def _db_rows(bs: BaseShift, pg_url: str, data_dir: Path) -> int:
    """Rows of `runs`, counted beside the store (its own connections are not trusted)."""
    if bs.store.name == "postgres":
        with PgTarget.parse(pg_url).connect(autocommit=True) as conn:
            row = conn.execute(b"SELECT count(*) FROM runs").fetchone()
    else:
        with sqlite3.connect(data_dir / "baseshift.db") as conn:
            row = conn.execute("SELECT count(*) FROM runs").fetchone()
    assert row is not None
    return int(row[0])


async def test_postgres_performance_shows_the_pool_tables_cache_and_connections(
        make_client: Callable[..., Any], pg_url: str) -> None:
    async with admin_client(make_client, "postgres", pg_url) as (bs, client):
        found = await client.get(PERFORMANCE)
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["backend"] == "postgres"
    pool = body["pool"]
    assert {"size", "available", "waiting", "requests", "errors"} <= set(pool)
    assert pool["open"] and pool["size"] >= 1 and pool["requests"] >= 1
    assert (pool["min_size"], pool["max_size"]) == (1, 4)
    tables = {t["name"]: t for t in body["tables"]}
    assert tables["jobs"]["bytes"] > 0
    assert 0 <= body["cache_hit_ratio"] <= 1
    assert body["connections"]["total"] >= 3  # the pool's, the writer's, the locks'
    assert body["transactions"]["committed"] > 0


async def test_sqlite_performance_shows_the_file_pages_wal_and_tables(
        make_client: Callable[..., Any], pg_url: str) -> None:
    async with admin_client(make_client, "sqlite", pg_url) as (bs, client):
        found = await client.get(PERFORMANCE)
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["backend"] == "sqlite" and body["journal_mode"] == "wal"
    assert body["file_bytes"] > 0 and body["page_count"] > 0 and body["page_size"] > 0
    assert body["wal_bytes"] >= 0
    runs = next(t for t in body["tables"] if t["name"] == "runs")
    assert runs["rows"] == 1


async def test_a_store_without_a_database_says_so(make_client: Callable[..., Any]) -> None:
    async with make_client(store="memory") as (bs, client):
        for path in (PERFORMANCE, SLOW):
            found = await client.get(path)
            assert found.status_code == 200 and found.json()["available"] is False
        refused = await client.post(EXPLAIN, json={"query": "SELECT 1"})
        assert refused.status_code == 422 and refused.headers["content-type"] == PROBLEM


async def test_sqlite_has_no_statement_statistics(make_client: Callable[..., Any],
                                                  pg_url: str) -> None:
    async with admin_client(make_client, "sqlite", pg_url) as (bs, client):
        found = await client.get(SLOW, params={"limit": 5})
    assert found.status_code == 200
    assert found.json()["available"] is False and "SQLite" in found.json()["reason"]


async def test_slow_queries_limit_is_checked(make_client: Callable[..., Any],
                                             pg_url: str) -> None:
    async with admin_client(make_client, "postgres", pg_url) as (bs, client):
        for bad in ("0", "101", "x"):
            found = await client.get(SLOW, params={"limit": bad})
            assert found.status_code == 400, found.text
        ok = await client.get(SLOW, params={"limit": 3})
    assert ok.status_code == 200 and "available" in ok.json()


@pytest.mark.parametrize("store", STORES)
async def test_a_select_is_explained_and_audited(make_client: Callable[..., Any], pg_url: str,
                                                 store: str) -> None:
    query = "SELECT id, state FROM runs WHERE workflow = 'hello' ORDER BY created_at"
    async with admin_client(make_client, store, pg_url) as (bs, client):
        found = await client.post(EXPLAIN, json={"query": query + ";"})
        assert found.status_code == 200, found.text
        body = found.json()
        trail = await bs.store.audit_page(AuditQuery(action="database.explain"))
    assert body["backend"] == store and body["plan"] and isinstance(body["suggestions"], list)
    if store == "postgres":
        assert body["plan"]["Plan"]["Node Type"] and body["estimated_cost"] > 0
    else:
        assert any("runs" in step["detail"] for step in body["plan"])
    assert [(r.entry.action, r.entry.outcome, r.entry.detail["query"]) for r in trail] == [
        ("database.explain", "success", query + ";")]
    assert trail[0].entry.actor == "admin-tester"


async def test_analyze_runs_a_select_in_postgres_and_reports_actual_rows(
        make_client: Callable[..., Any], pg_url: str) -> None:
    async with admin_client(make_client, "postgres", pg_url) as (bs, client):
        found = await client.post(EXPLAIN, json={"query": "SELECT * FROM runs",
                                                 "analyze": True})
    assert found.status_code == 200, found.text
    assert found.json()["analyzed"] is True
    assert "Actual Rows" in found.json()["plan"]["Plan"]


@pytest.mark.parametrize("store", STORES)
async def test_writes_and_many_statements_are_refused_and_change_nothing(
        make_client: Callable[..., Any], pg_url: str, tmp_path: Path, store: str) -> None:
    async with admin_client(make_client, store, pg_url) as (bs, client):
        before = _db_rows(bs, pg_url, tmp_path / "data")
        assert before == 1
        failures = []
        for body in ATTACKS:
            answer = await client.post(EXPLAIN, json=body)
            if answer.status_code not in (400, 422) or \
                    answer.headers["content-type"] != PROBLEM:
                failures.append(f"{body} -> {answer.status_code} {answer.text[:200]}")
        assert failures == []
        assert _db_rows(bs, pg_url, tmp_path / "data") == before
        trail = await bs.store.audit_page(AuditQuery(action="database.explain"))
    assert trail and all(r.entry.outcome == "failure" for r in trail)


async def test_a_write_hidden_in_a_function_is_stopped_by_the_read_only_transaction(
        make_client: Callable[..., Any], pg_url: str) -> None:
    """A statement the word check lets through (a function that writes) still writes
    nothing: analyze runs it in a read-only transaction, which PostgreSQL enforces."""
    with PgTarget.parse(pg_url).connect(autocommit=True) as conn:
        conn.execute(b"CREATE TABLE notes (n int)")
        conn.execute(b"CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql VOLATILE AS "
                     b"'INSERT INTO notes VALUES (1); SELECT 1'")
    async with admin_client(make_client, "postgres", pg_url) as (bs, client):
        answer = await client.post(EXPLAIN, json={"query": "SELECT sneaky()", "analyze": True})
        plain = await client.post(EXPLAIN, json={"query": "SELECT sneaky()"})
    assert answer.status_code == 422, answer.text
    assert "read-only transaction" in answer.json()["detail"]
    assert plain.status_code == 200  # only planned, never run
    with PgTarget.parse(pg_url).connect(autocommit=True) as conn:
        assert conn.execute(b"SELECT count(*) FROM notes").fetchone() == (0,)


async def test_a_scan_of_a_big_table_suggests_an_index_on_the_filtered_column(
        make_client: Callable[..., Any], pg_url: str, tmp_path: Path) -> None:
    with PgTarget.parse(pg_url).connect(autocommit=True) as conn:
        conn.execute(b"CREATE TABLE big (id int, colour text)")
        conn.execute(b"INSERT INTO big SELECT g, 'c' || (g % 50) FROM generate_series(1, 5000) g")
        conn.execute(b"ANALYZE big")
    async with admin_client(make_client, "postgres", pg_url) as (bs, client):
        found = await client.post(EXPLAIN, json={
            "query": "SELECT id FROM big WHERE colour = 'c7'"})
    assert found.status_code == 200, found.text
    (tip,) = found.json()["suggestions"]
    assert "sequential scan of big" in tip and "index on big (colour)" in tip


async def test_sqlite_suggests_an_index_for_a_full_scan_of_a_big_table(
        make_client: Callable[..., Any], pg_url: str, tmp_path: Path) -> None:
    async with admin_client(make_client, "sqlite", pg_url) as (bs, client):
        with sqlite3.connect(tmp_path / "data" / "baseshift.db") as conn:
            conn.execute("CREATE TABLE big (id int, colour text)")
            conn.executemany("INSERT INTO big VALUES (?, ?)",
                             [(i, f"c{i % 50}") for i in range(2000)])
        found = await client.post(EXPLAIN, json={
            "query": "SELECT id FROM big WHERE colour = 'c7'"})
    assert found.status_code == 200, found.text
    assert found.json()["suggestions"] == [
        "full scan of big (2000 rows): an index on the columns its WHERE clause tests may "
        "let it read fewer rows"]


@pytest.mark.parametrize("role", ["operator", "author", "viewer"])
async def test_only_admins_may_use_the_database_api(make_client: Callable[..., Any],
                                                    pg_url: str, role: str) -> None:
    async with admin_client(make_client, "sqlite", pg_url, role=role) as (bs, client):
        answers = [await client.get(PERFORMANCE), await client.get(SLOW),
                   await client.post(EXPLAIN, json={"query": "SELECT 1"})]
    assert [a.status_code for a in answers] == [403, 403, 403]

