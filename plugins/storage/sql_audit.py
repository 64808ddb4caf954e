"""The audit trail in SQL (core/audit.py): the `audit_log` table of chained entries and the
one-row `audit_head`, and appending to them inside a caller's transaction.

Every store that writes audited changes appends through one of three doors, each in the
transaction of the change: a SQLAlchemy Connection (identity changes, templates), a raw
sqlite3 cursor (the SQLite store's runs) or a psycopg cursor (the PostgreSQL store's runs).
Each reads the head first, locking it (PostgreSQL: `FOR UPDATE`; SQLite's writes already
hold the database lock), so concurrent writers of a fleet extend one chain in turn.
`SQLAudit` gives a store the read side of `AuditLog` on its `_query` and `_transact`.
"""
from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)

from baseshift.core.audit import (
    GENESIS,
    AuditEntry,
    AuditQuery,
    AuditRecord,
    ChainHead,
    chained,
    prune_entry,
)
from baseshift.core.json_text import dumps_compact, loads_strict
from baseshift.core.storecalls import StoreCalls, observed

from .sql_models import METADATA

T = TypeVar("T")

AUDIT_LOG = Table(
    "audit_log", METADATA,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", Float, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("resource", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("client", Text),
    Column("request_id", Text),
    Column("detail", Text, nullable=False),
    Column("prev_hash", Text, nullable=False),
    Column("hash", Text, nullable=False),
)
Index("ix_audit_log_at", AUDIT_LOG.c.at)
Index("ix_audit_log_actor", AUDIT_LOG.c.actor, AUDIT_LOG.c.seq)
Index("ix_audit_log_resource", AUDIT_LOG.c.resource, AUDIT_LOG.c.seq)
Index("ix_audit_log_client", AUDIT_LOG.c.client, AUDIT_LOG.c.seq)

AUDIT_HEAD = Table(
    "audit_head", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", Text, nullable=False),
)

AUDIT_ANCHOR = Table(
    "audit_anchor", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", Text, nullable=False),
)
"""The last entry removed by pruning (core/audit.py `AuditPruning`): verification starts
after it. No row: never pruned."""

AUDIT_TABLES = (AUDIT_LOG, AUDIT_HEAD, AUDIT_ANCHOR)
COLUMNS = tuple(c.name for c in AUDIT_LOG.columns)

def ensure_tables(conn: Connection) -> None:
    """Create the tables and the head where missing (SQLite stores, template stores)."""
    for table in AUDIT_TABLES:
        table.create(conn, checkfirst=True)
    for index in AUDIT_LOG.indexes:
        index.create(conn, checkfirst=True)
    if conn.scalar(select(AUDIT_HEAD.c.seq).where(AUDIT_HEAD.c.id == 1)) is None:
        conn.execute(insert(AUDIT_HEAD), {"id": 1, "seq": 0, "hash": GENESIS})


def row(record: AuditRecord) -> tuple[Any, ...]:
    """A record as the values of COLUMNS."""
    e = record.entry
    return (record.seq, e.at, e.actor, e.action, e.resource, e.outcome, e.client,
            e.request_id, dumps_compact(dict(e.detail)), record.prev_hash, record.hash)


def record_of(values: Sequence[Any]) -> AuditRecord:
    seq, at, actor, action, resource, outcome, client, request_id, detail, prev, digest = values
    entry = AuditEntry(action, resource, actor, outcome, client, request_id, float(at),
                       loads_strict(detail))
    return AuditRecord(int(seq), entry, prev, digest)


def _insert_sql(mark: str) -> str:
    return (f"INSERT INTO audit_log ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join([mark] * len(COLUMNS))})")


# ------------------------------------------------------------------ the three doors

def append(conn: Connection, entries: Sequence[AuditEntry]) -> None:
    """Append `entries` in `conn`'s transaction (SQLAlchemy: identity, templates)."""
    if not entries:
        return
    found = conn.execute(select(AUDIT_HEAD.c.seq, AUDIT_HEAD.c.hash)
                         .where(AUDIT_HEAD.c.id == 1).with_for_update()).one()
    records, head = chained(ChainHead(int(found.seq), found.hash), entries)
    conn.execute(insert(AUDIT_LOG), [dict(zip(COLUMNS, row(r), strict=True))
                                     for r in records])
    conn.execute(update(AUDIT_HEAD).where(AUDIT_HEAD.c.id == 1)
                 .values(seq=head.seq, hash=head.hash))


_SQLITE_INSERT = _insert_sql("?")


def append_sqlite(cursor: sqlite3.Cursor, entries: Sequence[AuditEntry]) -> None:
    """Append `entries` in the open IMMEDIATE transaction of `cursor` (SQLite runs)."""
    if not entries:
        return
    seq, digest = cursor.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
    records, head = chained(ChainHead(int(seq), digest), entries)
    cursor.executemany(_SQLITE_INSERT, [row(r) for r in records])
    cursor.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1",
                   (head.seq, head.hash))


PG_HEAD = "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE"
PG_INSERT = _insert_sql("%s")
PG_UPDATE_HEAD = "UPDATE audit_head SET seq = %s, hash = %s WHERE id = 1"


def pg_records(head: tuple[Any, ...], entries: Sequence[AuditEntry]
               ) -> tuple[list[tuple[Any, ...]], tuple[int, str]]:
    """The rows to insert after the locked head row `head`, and the new head's values (the
    PostgreSQL store runs PG_HEAD, PG_INSERT and PG_UPDATE_HEAD on its async cursor)."""
    records, new = chained(ChainHead(int(head[0]), str(head[1])), entries)
    return [row(r) for r in records], (new.seq, new.hash)


# ------------------------------------------------------------------ reads

def page(conn: Connection, query: AuditQuery) -> list[AuditRecord]:
    stmt = select(*AUDIT_LOG.columns).order_by(AUDIT_LOG.c.seq.desc()).limit(query.limit)
    c = AUDIT_LOG.c
    for column, value in ((c.actor, query.actor), (c.action, query.action),
                          (c.client, query.client)):
        if value is not None:
            stmt = stmt.where(column == value)
    if query.resource is not None:
        stmt = stmt.where(c.resource.startswith(query.resource, autoescape=True)
                          if query.resource.endswith(":") else c.resource == query.resource)
    if query.since is not None:
        stmt = stmt.where(c.at >= query.since)
    if query.until is not None:
        stmt = stmt.where(c.at < query.until)
    if query.before is not None:
        stmt = stmt.where(c.seq < query.before)
    return [record_of(r) for r in conn.execute(stmt)]


def records(conn: Connection, after: int, limit: int) -> list[AuditRecord]:
    stmt = (select(*AUDIT_LOG.columns).where(AUDIT_LOG.c.seq > after)
            .order_by(AUDIT_LOG.c.seq).limit(limit))
    return [record_of(r) for r in conn.execute(stmt)]


def head(conn: Connection) -> ChainHead:
    found = conn.execute(select(AUDIT_HEAD.c.seq, AUDIT_HEAD.c.hash)
                         .where(AUDIT_HEAD.c.id == 1)).one_or_none()
    return ChainHead() if found is None else ChainHead(int(found.seq), found.hash)


def anchor(conn: Connection) -> ChainHead:
    found = conn.execute(select(AUDIT_ANCHOR.c.seq, AUDIT_ANCHOR.c.hash)
                         .where(AUDIT_ANCHOR.c.id == 1)).one_or_none()
    return ChainHead() if found is None else ChainHead(int(found.seq), found.hash)


def prune(conn: Connection, before: float, dry_run: bool) -> int:
    """Remove the entries before the first one at or after `before`, in `conn`'s
    transaction; record the anchor and append the `audit.prune` entry."""
    top = conn.execute(select(AUDIT_HEAD.c.seq).where(AUDIT_HEAD.c.id == 1)
                       .with_for_update()).scalar_one()
    first_kept = conn.scalar(select(func.min(AUDIT_LOG.c.seq)).where(AUDIT_LOG.c.at >= before))
    upto = int(first_kept) - 1 if first_kept is not None else int(top)
    count = int(conn.scalar(select(func.count()).select_from(AUDIT_LOG)
                            .where(AUDIT_LOG.c.seq <= upto)) or 0)
    if count and not dry_run:
        last = conn.execute(select(AUDIT_LOG.c.seq, AUDIT_LOG.c.hash)
                            .where(AUDIT_LOG.c.seq == upto)).one()
        new = ChainHead(int(last.seq), last.hash)
        conn.execute(delete(AUDIT_LOG).where(AUDIT_LOG.c.seq <= upto))
        conn.execute(delete(AUDIT_ANCHOR).where(AUDIT_ANCHOR.c.id == 1))
        conn.execute(insert(AUDIT_ANCHOR), {"id": 1, "seq": new.seq, "hash": new.hash})
        append(conn, [prune_entry(new, count)])
    return count


class SQLAudit(ABC):
    """The `AuditLog` methods of a SQL store."""

    calls: StoreCalls

    @abstractmethod
    async def _query(self, fn: Callable[[Connection], T]) -> T: ...

    async def _transact(self, fn: Callable[[Connection], T]) -> T:
        return await self._query(fn)

    @observed("append_audit")
    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        if entries:
            await self._transact(lambda c: append(c, entries))

    @observed("audit_page")
    async def audit_page(self, query: AuditQuery) -> list[AuditRecord]:
        return await self._query(lambda c: page(c, query))

    @observed("audit_records")
    async def audit_records(self, after: int, limit: int) -> list[AuditRecord]:
        return await self._query(lambda c: records(c, after, limit))

    @observed("audit_head")
    async def audit_head(self) -> ChainHead:
        return await self._query(head)

    @observed("audit_anchor")
    async def audit_anchor(self) -> ChainHead:
        return await self._query(anchor)

    @observed("prune_audit")
    async def prune_audit(self, before: float, dry_run: bool = False) -> int:
        return await self._transact(lambda c: prune(c, before, dry_run))
