"""The log store in SQL (core/capabilities.py `LogLines`), for the SQLite and PostgreSQL
state stores alike: one `log_lines` table, a text column per query field (core/logquery.py
QUERY_FIELDS), the time as epoch seconds in `at`, the other JSON fields in `extra`.

The indexes serve what a search asks most: a time range, newest first (`at, id`), a run's
lines (`run_id, at`), a level (`lower(level), at`: levels are compared caseless), a
workflow's lines and a trace. `id` grows with each line stored, which `follow` reads as a
cursor (SQLite: AUTOINCREMENT, so an id is never given twice).
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Float,
    Index,
    Integer,
    Select,
    Table,
    Text,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    text,
)

from baseshift.core.loglines import LogLine, LogPage, LogSearch
from baseshift.core.logquery import QUERY_FIELDS
from baseshift.core.storecalls import StoreCalls, observed

from .sql_logquery import log_condition
from .sql_models import METADATA

T = TypeVar("T")

LOG_LINES = Table(
    "log_lines", METADATA,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("at", Float, nullable=False),
    *(Column(name, Text, nullable=name not in ("level", "message", "source"))
      for name in QUERY_FIELDS),
    Column("extra", Text),
    sqlite_autoincrement=True,
)
Index("ix_log_lines_at_id", LOG_LINES.c.at, LOG_LINES.c.id)
Index("ix_log_lines_run_at", LOG_LINES.c.run_id, LOG_LINES.c.at)
Index("ix_log_lines_level_at", func.lower(LOG_LINES.c.level), LOG_LINES.c.at)
Index("ix_log_lines_workflow_at", LOG_LINES.c.workflow_id, LOG_LINES.c.at)
Index("ix_log_lines_trace", LOG_LINES.c.trace_id)


def _row(line: LogLine) -> dict[str, Any]:
    row: dict[str, Any] = {name: line.fields.get(name) for name in QUERY_FIELDS}
    row["at"] = line.timestamp
    row["extra"] = json.dumps(dict(line.extra), default=str) if line.extra else None
    return row


def _line(row: Any) -> LogLine:
    values = row._mapping
    fields = {name: values[name] for name in QUERY_FIELDS if values[name] is not None}
    extra = json.loads(values["extra"]) if values["extra"] else {}
    return LogLine(float(values["at"]), fields, extra, int(values["id"]))


def _filters(search: LogSearch, glob: bool) -> list[ColumnElement[bool]]:
    c = LOG_LINES.c
    where = [log_condition(search.query, LOG_LINES, glob=glob)]
    if search.since is not None:
        where.append(c.at >= search.since)
    if search.until is not None:
        where.append(c.at <= search.until)
    if search.workflows is not None:
        where.append(c.workflow_id.in_(list(search.workflows)) if search.workflows
                     else c.id.is_(None))
    if search.newer_than is not None:
        where.append(c.id > search.newer_than)
    return where


def _page_query(search: LogSearch, where: list[ColumnElement[bool]]) -> Select[Any]:
    c = LOG_LINES.c
    query = select(LOG_LINES).where(*where).limit(search.limit)
    if search.newer_than is not None:
        return query.order_by(c.id.desc() if search.descending else c.id)
    if search.after is not None:
        at, last = search.after
        query = query.where(or_(c.at < at, and_(c.at == at, c.id < last))
                            if search.descending
                            else or_(c.at > at, and_(c.at == at, c.id > last)))
    return query.order_by(c.at.desc(), c.id.desc()) if search.descending \
        else query.order_by(c.at, c.id)


def search(conn: Connection, search: LogSearch, glob: bool) -> LogPage:
    """The page of `search` (core/loglines.py `select_lines` is its meaning)."""
    where = _filters(search, glob)
    total = (conn.scalar(select(func.count()).select_from(LOG_LINES).where(*where)) or 0
             if search.count else 0)
    if search.limit <= 0:
        return LogPage(int(total), [])
    return LogPage(int(total), [_line(r) for r in conn.execute(_page_query(search, where))])


def prune(conn: Connection, before: float, held: Select[Any], dry_run: bool) -> int:
    """Remove the lines older than `before`, except those of the runs `held` selects."""
    where = (LOG_LINES.c.at < before,
             or_(LOG_LINES.c.run_id.is_(None), LOG_LINES.c.run_id.not_in(held)))
    found = int(conn.scalar(select(func.count()).select_from(LOG_LINES).where(*where)) or 0)
    if found and not dry_run:
        conn.execute(delete(LOG_LINES).where(*where))
    return found


class SQLLogLines(ABC):
    """The `LogLines` ability of a SQL state store, on its `_transact` and `_query`."""

    calls: StoreCalls

    _GLOB: bool = False
    """Whether the database's LIKE ignores case (SQLite), see sql_logquery.py."""

    @abstractmethod
    async def _query(self, fn: Callable[[Connection], T]) -> T: ...

    async def _transact(self, fn: Callable[[Connection], T]) -> T:
        return await self._query(fn)

    _APPEND_LOCK: str | None = None
    """SQL that appends take first so that lines are committed in the order of their ids
    (PostgreSQL): a sequence hands out ids as inserts begin, and a follower reading the
    lines after the last id it saw would miss one whose transaction commits after a newer
    one's. (SQLite writes one transaction at a time anyway.)"""

    @observed("append_log_lines")
    async def append_log_lines(self, lines: Sequence[LogLine]) -> None:
        rows = [_row(line) for line in lines]
        lock = self._APPEND_LOCK

        def write(conn: Connection) -> None:
            if lock is not None:
                conn.execute(text(lock))
            conn.execute(insert(LOG_LINES), rows)

        if rows:
            await self._transact(write)

    @observed("search_log_lines")
    async def search_log_lines(self, search_: LogSearch) -> LogPage:
        return await self._query(lambda c: search(c, search_, self._GLOB))
