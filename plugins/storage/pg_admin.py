"""The PostgreSQL store's `DatabaseAdmin` ability (core/capabilities.py): its pool, tables,
cache hits, connections and transactions; the slowest statements from
`pg_stat_statements`; the plan of one read-only statement, in a read-only transaction that
is always rolled back."""
from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from baseshift.core.errors import QueryRefused, StoreError

from .pg_connect import PgTarget
from .pg_plan import plan_advice
from .pg_pool import pool_stats
from .sql_readonly import read_only_statement

STATEMENT_TIMEOUT = "5s"
"""How long an explained statement may take (analyze runs it)."""
TABLES = """SELECT c.relname, pg_total_relation_size(c.oid), c.reltuples::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind = 'r' ORDER BY 2 DESC, 1"""
DATABASE = """SELECT blks_hit, blks_read, xact_commit, xact_rollback, deadlocks, numbackends
FROM pg_stat_database WHERE datname = current_database()"""
CONNECTIONS = """SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity
WHERE datname = current_database() GROUP BY 1 ORDER BY 1"""
EXTENSION = """SELECT n.nspname FROM pg_extension e JOIN pg_namespace n
ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'"""
SLOWEST = """SELECT queryid, query, calls, total_exec_time, mean_exec_time, rows
FROM {}.pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY mean_exec_time DESC LIMIT %s"""
ENABLE = ("add pg_stat_statements to shared_preload_libraries in postgresql.conf, restart "
          "PostgreSQL, then run CREATE EXTENSION pg_stat_statements in this database")


class PgAdmin:
    """Mixed into `PostgresStateStore`, which provides the target, the pool and reads."""

    target: PgTarget
    _pool: AsyncConnectionPool[Any] | None

    if TYPE_CHECKING:  # provided by PostgresStateStore
        def _reading(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]: ...

    async def database_performance(self) -> Mapping[str, object]:
        try:
            async with self._reading() as conn:
                tables = await (await conn.execute(TABLES.encode(),
                                                   (self.target.schema,))).fetchall()
                db = await (await conn.execute(DATABASE.encode())).fetchone()
                states = await (await conn.execute(CONNECTIONS.encode())).fetchall()
        except psycopg.Error as exc:
            raise StoreError(f"reading the database statistics failed: {exc}") from exc
        hit, read, commits, rollbacks, deadlocks, _ = db or (0, 0, 0, 0, 0, 0)
        return {
            "backend": "postgres", "schema": self.target.schema, "pool": pool_stats(self._pool),
            "tables": [{"name": name, "bytes": size, "rows_estimate": None if rows < 0 else rows}
                       for name, size, rows in tables],
            "cache_hit_ratio": round(hit / (hit + read), 4) if hit + read else None,
            "connections": {"total": sum(n for _, n in states),
                            "by_state": {state: n for state, n in states}},
            "transactions": {"committed": commits, "rolled_back": rollbacks,
                             "deadlocks": deadlocks},
        }

    async def slow_queries(self, limit: int) -> Mapping[str, object]:
        try:
            async with self._reading() as conn:
                found = await (await conn.execute(EXTENSION.encode())).fetchone()
                if found is None:
                    return {"available": False, "reason": "the pg_stat_statements extension "
                            f"is not installed in this database: {ENABLE}"}
                try:
                    query = sql.SQL(SLOWEST).format(sql.Identifier(found[0]))
                    rows = await (await conn.execute(query, (limit,))).fetchall()
                except psycopg.errors.ObjectNotInPrerequisiteState as exc:
                    return {"available": False, "reason": "pg_stat_statements is installed "
                            f"but not loaded ({' '.join(str(exc).split())}): {ENABLE}"}
        except psycopg.Error as exc:
            raise StoreError(f"reading pg_stat_statements failed: {exc}") from exc
        return {"available": True, "queries": [
            {"queryid": str(qid), "query": text, "calls": calls, "total_ms": total,
             "mean_ms": mean, "rows": n} for qid, text, calls, total, mean, n in rows]}

    async def explain_query(self, query: str, analyze: bool = False) -> Mapping[str, object]:
        statement = read_only_statement(query, analyze)
        try:
            async with self._reading() as conn:
                plan, advice = await explain_read_only(conn, statement, analyze)
        except psycopg.errors.QueryCanceled as exc:
            raise QueryRefused(f"explaining the query took longer than {STATEMENT_TIMEOUT}",
                               details={"field": "query"}) from exc
        except (psycopg.ProgrammingError, psycopg.DataError, psycopg.NotSupportedError,
                psycopg.errors.ReadOnlySqlTransaction) as exc:
            raise QueryRefused(f"the database refused the query: {' '.join(str(exc).split())}",
                               details={"field": "query"}) from exc
        except psycopg.Error as exc:
            raise StoreError(f"explaining the query failed: {exc}") from exc
        top = plan.get("Plan", {})
        return {"backend": "postgres", "analyzed": analyze, "plan": plan,
                "estimated_cost": top.get("Total Cost"), "estimated_rows": top.get("Plan Rows"),
                "suggestions": advice}


async def explain_read_only(conn: psycopg.AsyncConnection[Any], statement: str,
                            analyze: bool) -> tuple[dict[str, Any], list[str]]:
    """The JSON plan of `statement` and advice on it, in a READ ONLY transaction with a
    statement timeout, always rolled back. The binary result format makes psycopg use the
    extended query protocol, which takes exactly one statement: a second one (`; COMMIT;
    DROP ...`) is a syntax error there, whatever the word check before let through."""
    options = "FORMAT JSON, ANALYZE, BUFFERS" if analyze else "FORMAT JSON"
    async with conn.transaction(force_rollback=True):
        await conn.execute(b"SET TRANSACTION READ ONLY")
        await conn.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'".encode())
        cur = await conn.execute(f"EXPLAIN ({options}) {statement}".encode(), binary=True)
        row = await cur.fetchone()
        plan: dict[str, Any] = row[0][0] if row else {}
        return plan, await plan_advice(conn, plan)
