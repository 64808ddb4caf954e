"""The SQLite store's hot read, `load_run`, straight through the sqlite3 driver.

A run's status is read on every API status call and every page view. Through SQLAlchemy's
connection pool, transaction and result machinery the three small SELECTs of `load_run` cost
about a millisecond; the driver itself needs a tenth of that. The SQL is derived once from
the same table definitions, and rows become records through the same functions as before.
"""
from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import JSON, Table

from baseshift.core.records import AttemptRecord, RunSnapshot

from .sql_models import (
    ATTEMPTS,
    JOBS,
    RUNS,
    attempt_record,
    job_record,
    run_record,
)


class RawSelect:
    """`SELECT <every column> FROM table WHERE <where> ORDER BY <order>` with rows decoded to
    dicts keyed by column name and JSON columns parsed. A column typed JSON has NUMERIC
    affinity in SQLite, so a bare number is stored (and comes back) as a number: only text
    is parsed; NULL stays None."""

    def __init__(self, table: Table, where: str, order: str = "") -> None:
        self.columns = [c.name for c in table.c]
        self._json = [isinstance(c.type, JSON) for c in table.c]
        names = ", ".join(f'"{c}"' for c in self.columns)
        self.sql = f'SELECT {names} FROM "{table.name}" WHERE {where}'
        if order:
            self.sql += f" ORDER BY {order}"

    def rows(self, cursor: sqlite3.Cursor, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        out = []
        columns, is_json = self.columns, self._json
        for row in cursor.execute(self.sql, params):
            out.append({c: (json.loads(v) if j and type(v) is str else v)
                        for c, j, v in zip(columns, is_json, row, strict=True)})
        return out


_RUN = RawSelect(RUNS, "id = ?")
# Jobs in the order first written (rowid), attempts by job and number, as the contract says.
_JOBS = RawSelect(JOBS, "run_id = ?", "rowid")
_ATTEMPTS = RawSelect(ATTEMPTS, "run_id = ?", "job_key, number")


KEYS_PER_SELECT = 400
"""(job key, number) pairs asked for in one SELECT of `load_attempts` (two parameters each,
well under SQLite's limit)."""


def load_attempts(conn: sqlite3.Connection, run_id: str,
                  keys: Sequence[tuple[str, int]]) -> list[AttemptRecord]:
    """The attempts `keys` of run `run_id` (core/capabilities.py `AttemptReads`), from one
    read transaction; found by the attempts' primary key, never by reading the run."""
    wanted = sorted(set(keys))
    found: list[AttemptRecord] = []
    with _reading(conn) as cursor:
        for start in range(0, len(wanted), KEYS_PER_SELECT):
            chunk = wanted[start:start + KEYS_PER_SELECT]
            params = (run_id, *(value for pair in chunk for value in pair))
            found += [attempt_record(m) for m in _some_attempts(len(chunk)).rows(cursor, params)]
    return found


@functools.lru_cache(maxsize=8)
def _some_attempts(count: int) -> RawSelect:
    """The SELECT of `count` attempts of a run by (job key, number), made once per count
    (every chunk but a read's last has `KEYS_PER_SELECT`)."""
    pairs = ", ".join(["(?, ?)"] * count)
    return RawSelect(ATTEMPTS, f"run_id = ? AND (job_key, number) IN (VALUES {pairs})",
                     "job_key, number")


@contextmanager
def _reading(conn: sqlite3.Connection) -> Iterator[sqlite3.Cursor]:
    """A cursor in one read transaction (what it reads is one consistent snapshot), ended
    and closed however the block ends."""
    cursor = conn.cursor()
    cursor.execute("BEGIN")
    try:
        yield cursor
    finally:
        cursor.execute("COMMIT")
        cursor.close()


def load_snapshot(conn: sqlite3.Connection, run_id: str,
                  with_attempts: bool = True) -> RunSnapshot | None:
    """The run, its jobs and attempts from one read transaction (a consistent snapshot)."""
    with _reading(conn) as cursor:
        runs = _RUN.rows(cursor, (run_id,))
        if not runs:
            return None
        jobs = [job_record(m) for m in _JOBS.rows(cursor, (run_id,))]
        attempts = [attempt_record(m) for m in _ATTEMPTS.rows(cursor, (run_id,))] \
            if with_attempts else []
    return RunSnapshot(run=run_record(runs[0]), jobs={j.key: j for j in jobs},
                       attempts=attempts)

