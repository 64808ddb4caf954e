"""Retention, legal hold and erasure in SQL (core/capabilities.py `RetentionPolicies`,
`LegalHolds`, `Erasure`), for the SQLite and PostgreSQL state stores alike: SQLAlchemy Core on
the `runs`, `jobs` and `attempts` tables, and two tables of their own, `run_holds` (the runs
on legal hold) and `run_tombstones` (what is left of erased runs).

Each call is one transaction (the store's `_transact`), its audit entries included.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Float,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.sql import ColumnElement

from baseshift.core.audit import AuditEntry
from baseshift.core.errors import Conflict, NotFound
from baseshift.core.retention import (
    ATTEMPT_LOGS,
    AUDIT_ENTRIES,
    JOB_RESULTS,
    LOG_LINES,
    RUN_KINDS,
    RUNS,
    Pruned,
    Tombstone,
)
from baseshift.core.states import RunState
from baseshift.core.storecalls import StoreCalls, observed

from . import sql_audit, sql_loglines
from .sql_models import ATTEMPTS, JOBS, METADATA
from .sql_models import RUNS as RUN_TABLE

RUN_HOLDS = Table(
    "run_holds", METADATA,
    Column("run_id", Text, primary_key=True),
    Column("held_at", Float, nullable=False),
    Column("held_by", Text, nullable=False),
)
RUN_TOMBSTONES = Table(
    "run_tombstones", METADATA,
    Column("run_id", Text, primary_key=True),
    Column("workflow", Text, nullable=False),
    Column("erased_at", Float, nullable=False),
    Column("erased_by", Text, nullable=False),
)

_UNFINISHED = (RunState.INITIALIZED.value, RunState.RUNNING.value)
_CHUNK = 500
"""Run ids per statement (SQLite limits the parameters of one statement)."""


def _run_end() -> ColumnElement[float]:
    return func.coalesce(RUN_TABLE.c.ended_at, RUN_TABLE.c.created_at)


def _finished_runs(held: bool) -> Any:
    """Finished runs, on hold or not."""
    on_hold = RUN_TABLE.c.id.in_(select(RUN_HOLDS.c.run_id))
    return select(RUN_TABLE.c.id).where(RUN_TABLE.c.state.not_in(_UNFINISHED),
                                        on_hold if held else ~on_hold)


def _chunks(ids: Sequence[str]) -> list[list[str]]:
    return [list(ids[i:i + _CHUNK]) for i in range(0, len(ids), _CHUNK)]


def delete_runs(conn: Connection, ids: Sequence[str], also: Sequence[Table] = ()) -> None:
    """Delete the runs `ids` with their attempts and jobs (and rows of `also` by run_id)."""
    for chunk in _chunks(ids):
        for table in (*also, ATTEMPTS, JOBS):
            conn.execute(delete(table).where(table.c.run_id.in_(chunk)))
        conn.execute(delete(RUN_TABLE).where(RUN_TABLE.c.id.in_(chunk)))
        conn.execute(delete(RUN_HOLDS).where(RUN_HOLDS.c.run_id.in_(chunk)))


def apply(conn: Connection, cutoffs: Mapping[str, float], dry_run: bool,
          also: Sequence[Table] = ()) -> Pruned:
    """The run kinds of `cutoffs` applied in `conn`'s transaction (audit entries apart)."""
    removed = {kind: 0 for kind in cutoffs}
    run_cutoffs = [cutoffs[k] for k in RUN_KINDS if k in cutoffs]
    held = 0
    if run_cutoffs:
        held = int(conn.scalar(select(func.count()).select_from(
            _finished_runs(True).where(_run_end() < max(run_cutoffs)).subquery())) or 0)
    if RUNS in cutoffs:
        old = list(conn.scalars(_finished_runs(False).where(_run_end() < cutoffs[RUNS])))
        removed[RUNS] = len(old)
        if not dry_run:
            delete_runs(conn, old, also)
    kept = _finished_runs(False)
    if RUNS in cutoffs and dry_run:  # what the runs policy would remove is not counted twice
        kept = kept.where(_run_end() >= cutoffs[RUNS])
    if ATTEMPT_LOGS in cutoffs:
        where = (ATTEMPTS.c.run_id.in_(kept), ATTEMPTS.c.log != "",
                 func.coalesce(ATTEMPTS.c.ended_at, ATTEMPTS.c.started_at)
                 < cutoffs[ATTEMPT_LOGS])
        removed[ATTEMPT_LOGS] = _count(conn, ATTEMPTS, where)
        if not dry_run:
            conn.execute(update(ATTEMPTS).where(*where).values(log=""))
    if JOB_RESULTS in cutoffs:
        ended = select(RUN_TABLE.c.id).where(RUN_TABLE.c.id.in_(kept),
                                             _run_end() < cutoffs[JOB_RESULTS])
        results = (JOBS.c.run_id.in_(ended),
                   (JOBS.c.output.is_not(None)) | (JOBS.c.error.is_not(None)))
        removed[JOB_RESULTS] = _count(conn, JOBS, results)
        if not dry_run:
            conn.execute(update(JOBS).where(*results).values(output=None, error=None))
    return Pruned(removed, held)


def _count(conn: Connection, table: Table, where: tuple[Any, ...]) -> int:
    return int(conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def set_hold(conn: Connection, run_id: str, hold: bool, by: str, at: float,
             audit: Sequence[AuditEntry]) -> None:
    if conn.scalar(select(RUN_TABLE.c.id).where(RUN_TABLE.c.id == run_id)) is None:
        raise NotFound(f"run '{run_id}' not found")
    conn.execute(delete(RUN_HOLDS).where(RUN_HOLDS.c.run_id == run_id))
    if hold:
        conn.execute(insert(RUN_HOLDS), {"run_id": run_id, "held_at": at, "held_by": by})
    sql_audit.append(conn, audit)


def erase(conn: Connection, tombstone: Tombstone, audit: Sequence[AuditEntry],
          also: Sequence[Table] = ()) -> None:
    run_id = tombstone.run_id
    state = conn.scalar(select(RUN_TABLE.c.state).where(RUN_TABLE.c.id == run_id))
    if state is None:
        raise NotFound(f"run '{run_id}' not found")
    if state in _UNFINISHED:
        raise Conflict(f"run '{run_id}' is {state}: only a finished run can be erased",
                       hint="cancel it first")
    if conn.scalar(select(RUN_HOLDS.c.run_id).where(RUN_HOLDS.c.run_id == run_id)):
        raise Conflict(f"run '{run_id}' is on legal hold and cannot be erased",
                       hint="take it off legal hold first")
    delete_runs(conn, [run_id], also)
    conn.execute(insert(RUN_TOMBSTONES), tombstone.to_json())
    sql_audit.append(conn, audit)


class SQLRetention(sql_audit.SQLAudit, sql_loglines.SQLLogLines):
    """The retention abilities of a SQL state store, on its `_transact` and `_query`."""

    calls: StoreCalls

    _ALSO: tuple[Table, ...] = (sql_loglines.LOG_LINES,)
    """Other tables keyed by `run_id` whose rows go with a removed run (its log lines)."""

    @observed("apply_retention")
    async def apply_retention(self, cutoffs: Mapping[str, float],
                              dry_run: bool = False) -> Pruned:
        runs = {k: v for k, v in cutoffs.items() if k in RUN_KINDS}
        found = await self._transact(lambda c: apply(c, runs, dry_run, self._ALSO))
        if LOG_LINES in cutoffs:
            held = select(RUN_HOLDS.c.run_id)
            lines = await self._transact(lambda c: sql_loglines.prune(
                c, cutoffs[LOG_LINES], held, dry_run))
            found = found + Pruned({LOG_LINES: lines})
        if AUDIT_ENTRIES in cutoffs:
            pruned = await self.prune_audit(cutoffs[AUDIT_ENTRIES], dry_run)
            found = found + Pruned({AUDIT_ENTRIES: pruned})
        return found

    @observed("set_legal_hold")
    async def set_legal_hold(self, run_id: str, hold: bool,
                             audit: Sequence[AuditEntry] = ()) -> None:
        by = audit[0].actor if audit else "system"
        at = audit[0].at if audit else 0.0
        await self._transact(lambda c: set_hold(c, run_id, hold, by, at, audit))

    @observed("legal_holds")
    async def legal_holds(self) -> list[str]:
        return await self._query(lambda c: list(c.scalars(
            select(RUN_HOLDS.c.run_id).order_by(RUN_HOLDS.c.run_id))))

    @observed("erase_run")
    async def erase_run(self, tombstone: Tombstone,
                        audit: Sequence[AuditEntry] = ()) -> None:
        await self._transact(lambda c: erase(c, tombstone, audit, self._ALSO))

    @observed("tombstone")
    async def tombstone(self, run_id: str) -> Tombstone | None:
        def read(conn: Connection) -> Tombstone | None:
            found = conn.execute(select(*RUN_TOMBSTONES.columns)
                                 .where(RUN_TOMBSTONES.c.run_id == run_id)).one_or_none()
            return None if found is None else Tombstone(
                found.run_id, found.workflow, float(found.erased_at), found.erased_by)
        return await self._query(read)
