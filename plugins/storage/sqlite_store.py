"""The SQLite state store: runs, jobs and attempts in one WAL-mode database file, beside the
accounts and tokens of `IdentityStore` (sql_identity.py).

Every `create_run` and `apply` is one transaction of Core executemany upserts (no ORM session,
no SELECT before a write), so a scheduling round of a thousand records costs one commit.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Concatenate, ParamSpec, TypeVar

from sqlalchemy import URL, Connection, Engine, make_url, select
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import ColumnElement, literal_column

from baseshift.core.audit import AuditEntry
from baseshift.core.errors import ConfigError, Conflict, StaleState, StoreError
from baseshift.core.json_text import dumps_compact
from baseshift.core.records import (
    AttemptRecord,
    Changes,
    JobRecord,
    RunRecord,
    RunSnapshot,
)
from baseshift.core.retention import Pruned, Tombstone
from baseshift.core.settings import Settings
from baseshift.core.states import RunState
from baseshift.core.storecalls import StoreCalls, observed

from . import sql_audit
from . import sql_queries as queries
from .claims import ClaimedRuns, FileClaims, LocalClaims
from .sql_identity import SQLIdentity
from .sql_keys import SQLDataKeys
from .sql_models import (
    ATTEMPTS,
    JOBS,
    META,
    METADATA,
    RETIRED_INDEXES,
    RUNS,
    SCHEMA_VERSION,
    attempt_row,
    job_row,
    run_row,
)
from .sql_retention import SQLRetention
from .sqlite_admin import SQLiteAdmin
from .sqlite_backup import backup_file, restore_file
from .sqlite_file import DB_FILENAME, database_key, immediate, is_memory, sqlite_engine
from .sqlite_reads import load_attempts, load_snapshot
from .sqlite_writes import RawUpsert, write_batch

T = TypeVar("T")
P = ParamSpec("P")
_UNFINISHED = (RunState.INITIALIZED.value, RunState.RUNNING.value)
# The implicit rowid is insertion order: it breaks ties between unfinished runs created at
# the same instant (and orders jobs as first written, in sqlite_reads).
_ROWID_RUNS: ColumnElement[int] = literal_column("runs.rowid")

_RAW_RUN = RawUpsert(RUNS, ("id",), guarded=True)
_RAW_JOB = RawUpsert(JOBS, ("run_id", "key"), guarded=True)
_RAW_ATTEMPT = RawUpsert(ATTEMPTS, ("run_id", "job_key", "number"))
_INSERT_RUN = RawUpsert(RUNS, ("id",), update=False)
_INSERT_JOB = RawUpsert(JOBS, ("run_id", "key"), update=False)
_SELECT_UNFINISHED = (select(RUNS.c.id).where(RUNS.c.state.in_(_UNFINISHED))
                      .order_by(RUNS.c.created_at, _ROWID_RUNS))


class SQLiteStateStore(ClaimedRuns, queries.SQLRunQueries, SQLIdentity, SQLRetention,
                       sql_audit.SQLAudit, SQLDataKeys, SQLiteAdmin):
    """A `StateStore` in SQLite: `settings.data_dir / "baseshift.db"`, or any `sqlite://` URL
    given directly (`sqlite://` alone is an in-memory database, for tests).

    Constraint violations (a duplicate run id, an attempt of a job that was never written)
    raise `Conflict` and leave the database as it was before the call.
    """

    kind: ClassVar[str] = "state"
    name: ClassVar[str] = "sqlite"
    _GLOB = True  # SQLite's LIKE ignores ASCII case (sql_logquery.py)

    def __init__(self, url: str | URL) -> None:
        self.url = make_url(url)
        self._engine: Engine | None = None
        self._writer: Engine | None = None
        self._raw: PoolProxiedConnection | None = None
        self._reader: PoolProxiedConnection | None = None
        self._claims: FileClaims | LocalClaims = (
            LocalClaims() if is_memory(self.url)
            else FileClaims(Path(f"{self.url.database}.claims")))
        self.calls = StoreCalls(self.name)

    @classmethod
    def from_settings(cls, settings: Settings) -> SQLiteStateStore:
        """The store for `settings.data_dir / "baseshift.db"`."""
        return cls(URL.create("sqlite", database=str(settings.data_dir / DB_FILENAME)))

    async def backup(self, target: Path) -> int:
        """Copy the database, consistently, while it may be in use; returns the run count."""
        return backup_file(self._file(), target)

    async def restore(self, source: Path) -> int:
        """Replace the database's content with a backup's; returns the run count."""
        return restore_file(source, self._file())

    def _file(self) -> Path:
        if is_memory(self.url):
            raise ConfigError("an in-memory SQLite database has nothing to back up")
        return Path(str(self.url.database))

    @property
    def engine(self) -> Engine:
        """The open engine; raises RuntimeError before `open()` or after `close()`."""
        if self._engine is None:
            raise RuntimeError(f"state store {self.url!s} is not open")
        return self._engine

    async def open(self) -> None:
        if self._engine is not None:
            return
        engine = sqlite_engine(self.url, json_serializer=dumps_compact,
                               json_deserializer=json.loads)
        # Schema creation reads then writes: IMMEDIATE, as every write of this store.
        writer = immediate(engine)
        try:
            self._create_schema(writer)
        except BaseException:
            engine.dispose()
            raise
        self._engine, self._writer = engine, writer
        self._raw = writer.raw_connection()
        self._reader = engine.raw_connection()

    async def close(self) -> None:
        self._claims.release_all()
        for raw in (self._raw, self._reader):
            if raw is not None:
                raw.close()
        self._raw = self._reader = None
        if self._engine is not None:
            self._engine.dispose()
        self._engine = self._writer = None

    @observed("run_states")
    async def run_states(self, run_ids: Sequence[str]) -> dict[str, RunState]:
        if not run_ids:
            return {}
        stmt = select(RUNS.c.id, RUNS.c.state).where(RUNS.c.id.in_(list(run_ids)))
        with self.engine.begin() as conn:
            return {row.id: RunState(row.state) for row in conn.execute(stmt)}

    def _create_schema(self, writer: Engine) -> None:
        with writer.begin() as conn:
            METADATA.create_all(conn)
            sql_audit.ensure_tables(conn)
            # create_all skips the indexes of tables that exist: add ones new since then.
            for index in RUNS.indexes:
                index.create(conn, checkfirst=True)
            for name in RETIRED_INDEXES:
                conn.exec_driver_sql(f'DROP INDEX IF EXISTS "{name}"')
            conn.execute(insert(META).on_conflict_do_nothing(),
                         {"key": "schema_version", "value": str(SCHEMA_VERSION)})
            found = conn.scalar(select(META.c.value).where(META.c.key == "schema_version"))
        if found != str(SCHEMA_VERSION):
            raise ConfigError(
                f"Database {self.url.database} has schema version {found}; this Base Shift "
                f"uses version {SCHEMA_VERSION}.",
                hint="point data_dir at a database made by this version of Base Shift")

    @property
    def audit_database(self) -> str | None:
        """The database whose audit trail this store writes (shared with a template store
        on the same file)."""
        return database_key(self.url)

    @observed("create_run")
    async def create_run(self, run: RunRecord, jobs: Sequence[JobRecord],
                         audit: Sequence[AuditEntry] = ()) -> None:
        self._write(f"creating run {run.id!r}", [
            (_INSERT_RUN, _INSERT_RUN.rows([run], run_row)),
            (_INSERT_JOB, _INSERT_JOB.rows(jobs, job_row))], audit)

    @observed("apply")
    async def apply(self, changes: Changes) -> None:
        if not changes:
            return
        # Parents first, so the foreign keys of jobs and attempts are satisfied within the batch.
        # Runs and jobs are guarded by the state the engine knew (another process may have
        # cancelled the run meanwhile): a stale row refuses the whole batch.
        written = self._write("applying changes", [
            (_RAW_RUN, _RAW_RUN.rows(changes.runs.values(), run_row,
                                     lambda r: _was(changes.was_run.get(r.id)))),
            (_RAW_JOB, _RAW_JOB.rows(changes.jobs.values(), job_row,
                                     lambda j: _was(changes.was_job.get((j.run_id, j.key))))),
            (_RAW_ATTEMPT, _RAW_ATTEMPT.rows(changes.attempts.values(), attempt_row))],
            changes.audit)
        if not written:
            stale = await self._moved(changes)
            raise StaleState(f"runs {', '.join(stale) or '?'} were changed by another "
                             "process; nothing of this batch was written", tuple(stale))

    async def _moved(self, changes: Changes) -> list[str]:
        """The runs of a refused batch whose stored run or job state is not what the batch
        expected (records not stored yet are new, not stale)."""
        ids = {*changes.was_run, *(k[0] for k in changes.was_job)}
        stale: set[str] = set()
        for run_id in ids:
            snapshot = await self.load_run(run_id, attempts=False)
            if snapshot is None:
                continue
            was = changes.was_run.get(run_id)
            if was is not None and snapshot.run.state is not was:
                stale.add(run_id)
            for (rid, key), state in changes.was_job.items():
                job = snapshot.jobs.get(key) if rid == run_id else None
                if job is not None and job.state is not state:
                    stale.add(run_id)
        return sorted(stale)

    def _write(self, what: str, batches: list[tuple[RawUpsert, list[tuple[Any, ...]]]],
               audit: Sequence[AuditEntry] = ()) -> bool:
        if self._raw is None:
            raise RuntimeError(f"state store {self.url!s} is not open")
        try:
            return write_batch(self._raw.driver_connection,  # type: ignore[arg-type]
                               batches, audit)
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"{what} was rejected, nothing was written: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"{what} failed, nothing was written: {exc}",
                             hint=f"check the database file {self.url.database}") from exc

    @observed("load_run")
    async def load_run(self, run_id: str, *, attempts: bool = True) -> RunSnapshot | None:
        return self._read(f"loading run {run_id!r}", load_snapshot, run_id, attempts)

    @observed("load_attempts")
    async def load_attempts(self, run_id: str,
                            keys: Sequence[tuple[str, int]]) -> list[AttemptRecord]:
        return self._read(f"loading attempts of run {run_id!r}", load_attempts, run_id, keys)

    def _read(self, what: str, read: Callable[Concatenate[sqlite3.Connection, P], T],
              *args: P.args, **kwargs: P.kwargs) -> T:
        """`read` on the reader connection (the hot reads: straight through the driver)."""
        if self._reader is None:
            raise RuntimeError(f"state store {self.url!s} is not open")
        try:
            return read(self._reader.driver_connection,  # type: ignore[arg-type]
                        *args, **kwargs)
        except sqlite3.Error as exc:
            raise StoreError(f"{what} failed: {exc}",
                             hint=f"check the database file {self.url.database}") from exc

    @observed("unfinished_runs")
    async def unfinished_runs(self) -> list[str]:
        with self.engine.begin() as conn:
            return list(conn.scalars(_SELECT_UNFINISHED))

    @observed("erase_run")
    async def erase_run(self, tombstone: Tombstone, audit: Sequence[AuditEntry] = ()) -> None:
        """Erase as every SQL store does, then checkpoint: the WAL file still holds the
        pages as they were before (secure_delete already zeroed them in the database)."""
        await super().erase_run(tombstone, audit)
        self._checkpoint()

    @observed("apply_retention")
    async def apply_retention(self, cutoffs: Mapping[str, float],
                              dry_run: bool = False) -> Pruned:
        done = await super().apply_retention(cutoffs, dry_run)
        if not dry_run:
            self._checkpoint()
        return done

    def _checkpoint(self) -> None:
        if self._raw is not None and not is_memory(self.url):
            self._raw.driver_connection.execute(  # type: ignore[union-attr]
                "PRAGMA wal_checkpoint(TRUNCATE)")

    async def _query(self, fn: Callable[[Connection], T]) -> T:
        with self.engine.begin() as c:
            return fn(c)

    async def _transact(self, fn: Callable[[Connection], T]) -> T:
        """`fn` in a write transaction, which takes the write lock at BEGIN: another process
        writing meanwhile is waited for (busy_timeout), so a read-then-write is atomic."""
        if self._writer is None:
            raise RuntimeError(f"state store {self.url!s} is not open")
        with self._writer.begin() as c:
            return fn(c)


def _was(state: Any) -> str | None:
    return None if state is None else str(state.value)
