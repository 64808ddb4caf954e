"""Batch writes for the SQLite store straight through the sqlite3 driver.

The engine stores every scheduling round in one transaction, so on a chain of jobs each job
costs one commit. Going through SQLAlchemy's statement machinery cost about four times what
SQLite itself spends on such a small batch, so writes use the driver's `executemany` with SQL
text derived once from the table definitions (the same tables SQLModel creates).
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import JSON, Table

from baseshift.core.audit import AuditEntry
from baseshift.core.json_text import dumps_compact

from .sql_audit import append_sqlite


class RawUpsert:
    """`INSERT ... ON CONFLICT (keys) DO UPDATE` for one table, with row-tuple encoding.

    A `guarded` upsert updates only where the stored `state` is still the one the writer
    knew, given as the row's last value (NULL: any state); `write_batch` then refuses the
    whole batch if any row was not written."""

    def __init__(self, table: Table, keys: tuple[str, ...], *, update: bool = True,
                 guarded: bool = False) -> None:
        self.columns = [c.name for c in table.c]
        json_columns = {c.name for c in table.c if isinstance(c.type, JSON)}
        self._encode = [c in json_columns for c in self.columns]
        names = ", ".join(f'"{c}"' for c in self.columns)
        marks = ", ".join("?" for _ in self.columns)
        sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'
        if update:
            sets = ", ".join(f'"{c}" = excluded."{c}"' for c in self.columns if c not in keys)
            sql += f' ON CONFLICT ({", ".join(keys)}) DO UPDATE SET {sets}'
        if guarded:
            sql += f' WHERE ?{len(self.columns) + 1} IS NULL OR "{table.name}"."state" = ' \
                f'?{len(self.columns) + 1}'
            sql = sql.replace("VALUES (" + marks + ")", "VALUES (" + ", ".join(
                f"?{i}" for i in range(1, len(self.columns) + 1)) + ")")
        self.guarded = guarded
        self.sql = sql

    def rows(self, records: Iterable[Any], to_row: Callable[[Any], dict[str, Any]],
             was: Callable[[Any], str | None] | None = None) -> list[tuple[Any, ...]]:
        out = []
        for record in records:
            row = to_row(record)
            values = tuple(_json(row[c]) if enc else row[c]
                           for c, enc in zip(self.columns, self._encode, strict=True))
            out.append(values + (was(record),) if was is not None else values)
        return out


def _json(value: Any) -> str | None:
    return None if value is None else dumps_compact(value)


def write_batch(conn: sqlite3.Connection,
                batches: list[tuple[RawUpsert, list[tuple[Any, ...]]]],
                audit: Sequence[AuditEntry] = ()) -> bool:
    """Run every batch and append `audit` in one IMMEDIATE transaction; roll back and
    re-raise on any error. False (rolled back) when a guarded upsert found a row in another
    state."""
    cursor = conn.cursor()
    cursor.execute("BEGIN IMMEDIATE")
    try:
        for statement, rows in batches:
            if rows:
                cursor.executemany(statement.sql, rows)
                if statement.guarded and cursor.rowcount < len(rows):
                    cursor.execute("ROLLBACK")
                    return False
        append_sqlite(cursor, audit)
        cursor.execute("COMMIT")
        return True
    except BaseException:
        cursor.execute("ROLLBACK")
        raise
    finally:
        cursor.close()
