"""The stores' `DatabaseAdmin` ability beneath the API: the PostgreSQL pool's options and
statistics, `pg_stat_statements` when missing or not loaded, and the word check every
explained query passes first (plugins/storage/sql_readonly.py)."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import URL

from baseshift.core.capabilities import DatabaseAdmin
from baseshift.core.errors import ConfigError, QueryRefused
from baseshift.core.settings import Settings
from baseshift.plugins.storage.memory import MemoryStateStore
from baseshift.plugins.storage.pg_admin import SLOWEST, explain_read_only
from baseshift.plugins.storage.pg_pool import PoolOptions
from baseshift.plugins.storage.pg_store import PostgresStateStore
from baseshift.plugins.storage.sql_readonly import read_only_statement
from baseshift.plugins.storage.sqlite_admin import explain_read_only as sqlite_explain
from baseshift.plugins.storage.sqlite_store import SQLiteStateStore
from tests.conftest import PG_SERVER


@pytest.fixture
def private_db() -> Iterator[str]:
    """The URL of a new database of its own (extensions are per database: another test
    must not see the one made here), dropped after the test."""
    name = f"bs_dbadmin_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    yield PG_SERVER.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def _settings(**table: Any) -> Settings:
    return Settings(database_url=PG_SERVER, extra={"storage_postgres": table})


def test_pool_options_come_from_the_storage_postgres_table() -> None:
    assert PoolOptions.from_settings(Settings()) == PoolOptions(1, 4, 30.0, 600.0)
    assert PoolOptions.from_settings(_settings(pool_min_size=2, pool_max_size=8,
                                               pool_timeout=2.5, pool_max_idle=60)) \
        == PoolOptions(2, 8, 2.5, 60.0)


@pytest.mark.parametrize(("table", "named"), [
    ({"pool_max_size": 0}, "pool_max_size"),
    ({"pool_min_size": "two"}, "pool_min_size"),
    ({"pool_timeout": -1}, "pool_timeout"),
    ({"pool_min_size": 5, "pool_max_size": 2}, "pool_min_size"),
])
def test_a_bad_pool_option_names_its_key(table: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        PoolOptions.from_settings(_settings(**table))


async def test_the_store_opens_its_pool_with_the_configured_sizes(pg_url: str) -> None:
    settings = Settings(database_url=pg_url, extra={"storage_postgres": {
        "pool_min_size": 2, "pool_max_size": 3}})
    store = PostgresStateStore.from_settings(settings)
    await store.open()
    try:
        assert await store.unfinished_runs() == []
        pool = (await store.database_performance())["pool"]
    finally:
        await store.close()
    assert isinstance(pool, dict)
    assert (pool["min_size"], pool["max_size"], pool["size"]) == (2, 3, 2)
    assert pool["requests"] >= 1 and pool["errors"] == 0


async def test_reads_go_on_while_a_pool_connection_is_held(pg_store: PostgresStateStore) -> None:
    """Reads are no longer queued behind one connection: with one taken (a long read),
    another read gets its own."""
    assert pg_store._pool is not None
    async with pg_store._pool.connection() as held:
        await held.execute(b"SELECT 1")
        assert await pg_store.load_run("nothing") is None
        assert pg_store._pool.get_stats()["pool_size"] >= 2


async def test_slow_queries_say_how_to_install_pg_stat_statements(private_db: str) -> None:
    store = PostgresStateStore(private_db)
    await store.open()
    try:
        found = await store.slow_queries(5)
    finally:
        await store.close()
    assert found["available"] is False
    reason = str(found["reason"])
    assert "not installed" in reason and "shared_preload_libraries" in reason
    assert "CREATE EXTENSION pg_stat_statements" in reason


async def test_slow_queries_of_an_extension_not_preloaded_say_how_to_load_it(
        private_db: str) -> None:
    """This machine's PostgreSQL has the extension (postgresql-contrib) but does not
    preload its library: CREATE EXTENSION works, reading it fails. The server's global
    configuration is not changed by a test, so the path with data is not run here."""
    with psycopg.connect(private_db, autocommit=True) as conn:
        conn.execute(b"CREATE EXTENSION pg_stat_statements")
        preloaded = "pg_stat_statements" in str(
            conn.execute(b"SHOW shared_preload_libraries").fetchone())
    store = PostgresStateStore(private_db)
    await store.open()
    try:
        found = await store.slow_queries(5)
    finally:
        await store.close()
    if preloaded:  # a server configured for it answers with the statements
        assert found["available"] is True and isinstance(found["queries"], list)
        return
    assert found["available"] is False
    assert "not loaded" in str(found["reason"])
    assert "shared_preload_libraries" in str(found["reason"])
    with psycopg.connect(private_db, autocommit=True) as conn:
        # the query read once it is loaded names columns the view has (planned, not run)
        conn.execute(b"EXPLAIN " + SLOWEST.format('"public"').encode(), (5,))


def test_the_builtin_stores_offer_database_admin_except_memory() -> None:
    assert issubclass(PostgresStateStore, DatabaseAdmin)
    assert not isinstance(MemoryStateStore(), DatabaseAdmin)


@pytest.mark.parametrize("query", [
    "SELECT 1", "select * from runs where id = 'a;b'", "WITH x AS (SELECT 1) SELECT * FROM x",
    "VALUES (1)", "TABLE runs", "SELECT 1;", "SELECT 'delete' AS word",
    "SELECT 1 -- drop table runs", "SELECT $$; DROP$$",
])
def test_read_only_statements_pass(query: str) -> None:
    assert read_only_statement(query, analyze=True) == query.rstrip(";")


@pytest.mark.parametrize("query", [
    "DELETE FROM runs", "SELECT 1; SELECT 2", "EXPLAIN SELECT 1", "EXPLAIN ANALYZE DELETE FROM x",
    "WITH d AS (DELETE FROM runs RETURNING *) SELECT * FROM d", "SELECT * FROM runs FOR SHARE",
    "SELECT * FROM runs FOR NO KEY UPDATE", "SELECT * INTO t FROM runs", "INSERT INTO t VALUES (1)",
    "CREATE TABLE t (a int)", "SET search_path = x", "COPY runs TO '/tmp/x'", "", "   ;",
    "PRAGMA writable_schema = 1", "ATTACH DATABASE 'x' AS y",
    pytest.param("SELECT " + "1" * 20_000, id="too-long"),
])
def test_anything_else_is_refused(query: str) -> None:
    with pytest.raises(QueryRefused):
        read_only_statement(query)


@pytest.mark.parametrize("query", [
    "SELECT nextval('s')", "SELECT pg_terminate_backend(1)", "SELECT set_config('a', 'b', 0)",
    "SELECT pg_advisory_lock(1)", "SELECT pg_sleep(10)", "SELECT lo_unlink(1)",
])
def test_functions_with_side_effects_are_refused_with_analyze_only(query: str) -> None:
    assert read_only_statement(query) == query
    with pytest.raises(QueryRefused, match="side effects"):
        read_only_statement(query, analyze=True)


@pytest.mark.parametrize("call", [
    'SELECT "pg_terminate_backend"({pid})',  # a quoted name the word check reads as text
    "SELECT E'\\'' , pg_terminate_backend({pid}) --'",  # a string it ends too late
    "SELECT pg_catalog . pg_terminate_backend /* */ ({pid})",
    "SELECT 1 FROM pg_stat_activity WHERE pid = {pid} AND pg_terminate_backend(pid)",
    "SELECT query_to_xml('select pg_terminate_backend({pid})', true, true, '')",
])
async def test_analyze_never_runs_a_volatile_function_however_it_is_written(
        pg_store: PostgresStateStore, pg_url: str, call: str) -> None:
    """With analyze the statement runs, and a read-only transaction lets a function with
    effects outside it run (ending another connection here). The database itself says
    which functions the statement calls, and a volatile one refuses analyze, however the
    text hides it from the word check; without analyze it is only planned."""
    assert pg_store._pool is not None
    with psycopg.connect(pg_url.split("?")[0], autocommit=True) as victim:
        pid = victim.info.backend_pid
        statement = call.format(pid=pid)
        async with pg_store._pool.connection() as conn:
            with pytest.raises(QueryRefused, match="volatile"):
                await explain_read_only(conn, statement, analyze=True)
            await explain_read_only(conn, statement, analyze=False)  # planned, not run
        assert victim.execute(b"SELECT 1").fetchone() == (1,)  # still connected


async def test_analyze_looks_into_the_views_a_statement_reads(
        pg_store: PostgresStateStore, pg_url: str) -> None:
    assert pg_store._pool is not None
    with psycopg.connect(pg_url.split("?")[0], autocommit=True) as victim:
        pid = victim.info.backend_pid
        async with pg_store._pool.connection() as conn, \
                conn.transaction(force_rollback=True):
            await conn.execute(f"CREATE TEMP VIEW ender AS SELECT pg_terminate_backend({pid})"
                               .encode())
            await conn.execute(b"CREATE TEMP VIEW outer_view AS SELECT * FROM ender")
            with pytest.raises(QueryRefused, match=r"volatile functions \(pg_terminate_backend"):
                await explain_read_only(conn, "SELECT * FROM outer_view", analyze=True)
        assert victim.execute(b"SELECT 1").fetchone() == (1,)


async def test_analyze_without_the_right_to_check_the_functions_says_so(
        pg_store: PostgresStateStore) -> None:
    """The check needs a temporary view: a role that may not make one is told that, and
    how to go on, rather than that the database refused the query."""
    assert pg_store._pool is not None
    async with pg_store._pool.connection() as conn, conn.transaction(force_rollback=True):
        database = (await (await conn.execute(b"SELECT current_database()")).fetchone())
        assert database is not None
        await conn.execute(b"CREATE ROLE baseshift_no_temp NOLOGIN")
        await conn.execute(f'REVOKE TEMPORARY ON DATABASE "{database[0]}" FROM PUBLIC'
                           .encode())
        await conn.execute(b"SET LOCAL ROLE baseshift_no_temp")
        with pytest.raises(QueryRefused, match="may not make one") as refused:
            await explain_read_only(conn, "SELECT 1", analyze=True)
    assert refused.value.hint is not None and "without analyze" in refused.value.hint


async def test_analyze_runs_a_statement_of_stable_functions(
        pg_store: PostgresStateStore) -> None:
    assert pg_store._pool is not None
    async with pg_store._pool.connection() as conn:
        plan, _ = await explain_read_only(
            conn, "SELECT count(*), count(*), lower('A'), now() FROM runs WHERE id = 'x'",
            analyze=True)
    assert "Actual Rows" in plan["Plan"]


@pytest.mark.parametrize("statement", [
    "SELECT 1; COMMIT; DROP TABLE runs",
    "SELECT 1; DROP TABLE runs",
])
async def test_the_database_takes_one_statement_whatever_the_word_check_missed(
        pg_store: PostgresStateStore, pg_url: str, statement: str) -> None:
    """Beneath the word check: the statement goes over the extended query protocol, which
    refuses a second statement, so not even a COMMIT can end the read-only transaction."""
    assert pg_store._pool is not None
    async with pg_store._pool.connection() as conn:
        with pytest.raises(psycopg.errors.SyntaxError):
            await explain_read_only(conn, statement, analyze=True)
    with psycopg.connect(pg_url.split("?")[0], autocommit=True) as conn:
        schema = pg_url.rsplit("schema=", 1)[1]
        assert conn.execute(b"SELECT to_regclass(%s)", (f"{schema}.runs",)).fetchone() \
            == (f"{schema}.runs",)


async def test_sqlite_explains_on_a_read_only_connection_whatever_the_word_check_missed(
        tmp_path: Path) -> None:
    """Beneath the word check: sqlite3 takes one statement per call, and EXPLAIN QUERY PLAN
    only plans it, on a connection opened read-only."""
    store = SQLiteStateStore(URL.create("sqlite", database=str(tmp_path / "baseshift.db")))
    await store.open()
    try:
        with pytest.raises(QueryRefused, match="one statement"):
            sqlite_explain(tmp_path / "baseshift.db", "SELECT 1; DROP TABLE runs")
        for statement in ("DROP TABLE runs", "DELETE FROM runs RETURNING *"):
            sqlite_explain(tmp_path / "baseshift.db", statement)  # planned, never run
        assert await store.unfinished_runs() == []  # the table is still there
    finally:
        await store.close()
