"""Rows of the PostgreSQL store: the SQL of its hot writes and reads, and the conversions of
records to parameters (JSON columns wrapped, NUL characters replaced: PostgreSQL text cannot
hold them, a job's log can)."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from psycopg.types.json import Json
from sqlalchemy import JSON, Table

from baseshift.core.json_text import dumps_compact

from .sql_models import ATTEMPTS, JOBS, RUNS

Row = dict[str, Any]


def _params(table: Table) -> Callable[[Row], Row]:
    json_columns = {c.name for c in table.c if isinstance(c.type, JSON)}

    def convert(row: Row) -> Row:
        out: Row = {}
        for name, value in row.items():
            if name in json_columns:
                out[name] = None if value is None else Json(value, dumps_compact)
            elif type(value) is str and "\0" in value:
                out[name] = value.replace("\0", "\ufffd")
            else:
                out[name] = value
        return out
    return convert


RUN_PARAMS = _params(RUNS)
JOB_PARAMS = _params(JOBS)
ATTEMPT_PARAMS = _params(ATTEMPTS)


def _columns(table: Table) -> list[str]:
    return [c.name for c in table.c]


def _insert(table: Table) -> str:
    names = _columns(table)
    return (f'INSERT INTO {table.name} AS t ({", ".join(names)}) '
            f'VALUES ({", ".join(f"%({n})s" for n in names)})')


def guarded_upsert(table: Table, keys: Iterable[str]) -> str:
    """Insert, or update where the stored state is still `%(was)s` (any state when it is
    NULL); RETURNING tells the caller which rows were written."""
    keys = list(keys)
    updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in _columns(table) if n not in keys)
    return (f"{_insert(table)} ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates} "
            "WHERE %(was)s::text IS NULL OR t.state = %(was)s::text RETURNING 1")


INSERT_RUN = _insert(RUNS)
INSERT_JOB = _insert(JOBS)
UPSERT_RUN = guarded_upsert(RUNS, ("created_at", "id"))
UPSERT_JOB = guarded_upsert(JOBS, ("run_id", "key"))
UPSERT_ATTEMPT = (f"{_insert(ATTEMPTS)} ON CONFLICT (run_id, job_key, number, started_at) "
                  "DO UPDATE SET " + ", ".join(
                      f"{n} = EXCLUDED.{n}" for n in _columns(ATTEMPTS)
                      if n not in ("run_id", "job_key", "number", "started_at")))


def select(table: Table, where: str, order: str = "") -> str:
    sql = f'SELECT {", ".join(_columns(table))} FROM {table.name} WHERE {where}'
    return f"{sql} ORDER BY {order}" if order else sql


SELECT_RUN = select(RUNS, "id = %s")
SELECT_JOBS = select(JOBS, "run_id = %s", "seq")
SELECT_ATTEMPTS = select(ATTEMPTS, "run_id = %s", "job_key, number")
SELECT_SOME_ATTEMPTS = select(
    ATTEMPTS, "run_id = %s AND (job_key, number) IN "
    "(SELECT * FROM unnest(%s::text[], %s::integer[]))", "job_key, number")
"""The attempts of a run by (job key, number): the keys as two arrays, one parameter each."""
