"""The PostgreSQL store's `DatabaseAdmin` ability (core/capabilities.py): its pool, tables,
cache hits, connections and transactions; the slowest statements from
`pg_stat_statements`; the plan of one read-only statement, in a read-only transaction that
is always rolled back."""
from __future__ import annotations

import re
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
RULES = """SELECT ev_action::text FROM pg_rewrite WHERE ev_class = ANY(%s) AND ev_type = '1'"""
"""The query trees of views (their SELECT rules), as PostgreSQL stores them."""
VOLATILE = """SELECT DISTINCT proname FROM pg_proc WHERE provolatile = 'v' AND (oid = ANY(%s)
OR oid IN (SELECT oprcode FROM pg_operator WHERE oid = ANY(%s))) ORDER BY 1"""
"""The volatile ones of some functions and of the functions of some operators."""
_CALLED = re.compile(r":(?:funcid|opfuncid|aggfnoid|winfnoid) (\d+)")
_OPERATOR = re.compile(r":opno (\d+)")
_RELATION = re.compile(r":relid (\d+)")
VIEW_DEPTH = 16
"""Views read through views at most this deep are looked into (a deeper one refuses)."""
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
    if analyze and (called := await _volatile_calls(conn, statement)):
        raise QueryRefused(
            f"the query cannot be explained with analyze: it calls volatile functions "
            f"({', '.join(called)}), which may act outside the read-only transaction",
            details={"field": "query"},
            hint="send it without analyze: its plan is shown, and nothing is run")
    options = "FORMAT JSON, ANALYZE, BUFFERS" if analyze else "FORMAT JSON"
    async with conn.transaction(force_rollback=True):
        await conn.execute(b"SET TRANSACTION READ ONLY")
        await conn.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'".encode())
        cur = await conn.execute(f"EXPLAIN ({options}) {statement}".encode(), binary=True)
        row = await cur.fetchone()
        plan: dict[str, Any] = row[0][0] if row else {}
        return plan, await plan_advice(conn, plan)


async def _volatile_calls(conn: psycopg.AsyncConnection[Any], statement: str) -> list[str]:
    """The volatile functions `statement` calls, directly or in the views it reads, as
    PostgreSQL parses it (not as a word check reads it: a quoted name, an escaped string, a
    query in a string argument all hide a call from words). A read-only transaction refuses
    writes, not what a function does outside it (end a connection, sleep, take a session
    lock, call out). So the statement is made a temporary view, never run, in a
    transaction rolled back, and the function, aggregate, window and operator ids of its
    stored query tree (and of the views it reads) are looked up. Wrapped in a subquery, so
    that columns of the same name (`count(*), count(*)`) do not stop the view; a name in
    the tree that merely looks like an id can only refuse more, never less."""
    functions: set[int] = set()
    operators: set[int] = set()
    async with conn.transaction(force_rollback=True):
        await conn.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'".encode())
        try:
            await conn.execute(f"CREATE TEMP VIEW baseshift_explained AS SELECT 1 FROM "
                               f"({statement}\n) AS explained".encode(), binary=True)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise QueryRefused(
                "the query cannot be explained with analyze: the functions it calls are "
                "checked through a temporary view, and the store's database role may not "
                f"make one ({' '.join(str(exc).split())})", details={"field": "query"},
                hint="grant TEMPORARY on the database to the store's role, or send the "
                "query without analyze") from exc
        cur = await conn.execute(b"SELECT 'pg_temp.baseshift_explained'::regclass::oid")
        row = await cur.fetchone()
        assert row is not None
        seen = todo = {int(row[0])}
        for _ in range(VIEW_DEPTH):
            cur = await conn.execute(RULES.encode(), (list(todo),))
            trees = [tree for tree, in await cur.fetchall()]
            functions.update(int(i) for tree in trees for i in _CALLED.findall(tree))
            operators.update(int(i) for tree in trees for i in _OPERATOR.findall(tree))
            todo = {int(i) for tree in trees for i in _RELATION.findall(tree)} - seen
            seen = seen | todo
            if not todo:
                break
        else:
            return [f"views nested more than {VIEW_DEPTH} deep"]
        cur = await conn.execute(VOLATILE.encode(), (list(functions), list(operators)))
        return [str(name) for name, in await cur.fetchall()]
