"""The SQLite store's `DatabaseAdmin` ability (core/capabilities.py): the file, its pages,
WAL and journal mode, the tables; `EXPLAIN QUERY PLAN` of one read-only statement on a
connection opened read-only (`mode=ro`), which cannot write whatever the statement says.
SQLite keeps no statistics of past statements: `slow_queries` says so."""
from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path

from sqlalchemy import URL

from baseshift.core.errors import QueryRefused, StoreError

from .sql_readonly import read_only_statement
from .sqlite_file import is_memory

BIG_TABLE_ROWS = 1000
"""Rows from which a full scan of a table is worth a word."""


class SQLiteAdmin:
    """Mixed into `SQLiteStateStore`, which provides the URL of its file."""

    url: URL

    def _database_file(self) -> Path:
        if is_memory(self.url):
            raise StoreError("an in-memory SQLite database has no file to inspect",
                             hint="use a file database (the default sqlite store)")
        return Path(str(self.url.database))

    async def database_performance(self) -> Mapping[str, object]:
        return await asyncio.to_thread(_performance, self._database_file())

    async def slow_queries(self, limit: int) -> Mapping[str, object]:
        return {"available": False, "reason": "SQLite keeps no statistics of the statements "
                "it ran; use the postgres store with pg_stat_statements for them"}

    async def explain_query(self, query: str, analyze: bool = False) -> Mapping[str, object]:
        statement = read_only_statement(query, analyze)
        return await asyncio.to_thread(explain_read_only, self._database_file(), statement)


def _read_only(file: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)
    conn.execute("PRAGMA query_only = ON")
    return conn


def _performance(file: Path) -> dict[str, object]:
    wal = Path(f"{file}-wal")
    with closing(_read_only(file)) as conn:
        pragma = {name: conn.execute(f"PRAGMA {name}").fetchone()[0]
                  for name in ("page_count", "page_size", "freelist_count", "journal_mode")}
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        sizes = _table_bytes(conn)
        tables = [{"name": name, "bytes": sizes.get(name),
                   "rows": conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]}
                  for name in names]
    return {"backend": "sqlite", "file_bytes": file.stat().st_size,
            "wal_bytes": wal.stat().st_size if wal.exists() else 0, **pragma,
            "tables": sorted(tables, key=lambda t: (-(t["bytes"] or 0), t["name"]))}


def _table_bytes(conn: sqlite3.Connection) -> dict[str, int]:
    """Bytes per table and index (the `dbstat` table, when SQLite was built with it)."""
    try:
        return {str(n): int(s) for n, s in
                conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")}
    except sqlite3.OperationalError:
        return {}


def explain_read_only(file: Path, statement: str) -> dict[str, object]:
    """`EXPLAIN QUERY PLAN` of `statement` on a read-only connection to `file`: only
    planned, and sqlite3 refuses a second statement in one call."""
    try:
        with closing(_read_only(file)) as conn:
            rows = conn.execute(f"EXPLAIN QUERY PLAN {statement}").fetchall()
            advice = _advice(conn, [str(r[3]) for r in rows])
    except (sqlite3.OperationalError, sqlite3.ProgrammingError) as exc:
        raise QueryRefused(f"the database refused the query: {exc}",
                           details={"field": "query"}) from exc
    plan = [{"id": r[0], "parent": r[1], "detail": r[3]} for r in rows]
    return {"backend": "sqlite", "analyzed": False, "plan": plan, "estimated_cost": None,
            "suggestions": advice}


def _advice(conn: sqlite3.Connection, details: list[str]) -> list[str]:
    advice = []
    for detail in details:
        words = detail.split()
        if len(words) < 2 or words[0] != "SCAN" or "INDEX" in words:
            continue
        table = words[2] if words[1] == "TABLE" and len(words) > 2 else words[1]
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                             (table,)).fetchone()
        rows = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] if found else 0
        if rows >= BIG_TABLE_ROWS:
            advice.append(f"full scan of {table} ({rows} rows): an index on the columns "
                          "its WHERE clause tests may let it read fewer rows")
    return advice

