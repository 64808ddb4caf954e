"""The PostgreSQL state store: the SQLite store's tables, shared by any number of servers and
workers.

- `create_run` (the run and all its jobs) and `apply` (one engine round) are each one
  transaction.
- Every job and run transition is guarded by the state the engine last knew: if another
  process moved the record meanwhile, the whole batch is rejected (`StaleState`), so two
  processes can never both move the same job.
- Who executes a run is a session advisory lock (`claim_run`): PostgreSQL releases it when the
  holder's connection ends, however its process died.
- Hot reads go straight through psycopg on a pool (psycopg_pool, sized by
  `[plugins.storage_postgres]`, see `pg_pool`), so reads run side by side; writes are one
  transaction at a time in this process, on one long-lived connection, and the advisory
  locks live on another (a session's locks end with it: it cannot be pooled). Listings and
  analytics reuse the SQLite store's SQLAlchemy queries (`sql_queries`) on a small
  SQLAlchemy pool, in a thread, and so do the accounts and tokens of `IdentityStore`
  (`sql_identity`).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import psycopg
from psycopg.types.json import Json
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Column, Connection, Engine, MetaData, Table, Text, create_engine

from baseshift.core.audit import GENESIS, AuditEntry
from baseshift.core.errors import ConfigError, Conflict, StaleState, StoreError
from baseshift.core.records import (
    AttemptRecord,
    Changes,
    JobRecord,
    Retired,
    RunRecord,
    RunSnapshot,
)
from baseshift.core.settings import Settings
from baseshift.core.states import RunState
from baseshift.core.storecalls import StoreCalls, observed

from . import pg_rows as sql
from . import sql_audit
from . import sql_queries as queries
from .pg_admin import PgAdmin
from .pg_backup import dump_database, restore_database
from .pg_connect import CONNECT_TIMEOUT, PgTarget
from .pg_pool import DEFAULT_POOL, PoolOptions
from .pg_retention import retire_before
from .pg_schema import ensure_partitions, migrate
from .sql_identity import SQLIdentity
from .sql_keys import SQLDataKeys
from .sql_loglines import LOG_LINES
from .sql_models import (
    attempt_record,
    attempt_row,
    job_record,
    job_row,
    run_record,
    run_row,
)
from .sql_retention import SQLRetention

log = logging.getLogger("baseshift.store")

T = TypeVar("T")
EXCLUSIVE_RETRY = 0.01
"""Seconds between tries for a lock another process holds (held for milliseconds)."""
_UNFINISHED = [RunState.INITIALIZED.value, RunState.RUNNING.value]
# Advisory lock spaces (the second argument of hashtextextended), one per kind of lock.
_CLAIMS, _RUN_IDS, _LEADERS, _EXCLUSIVE, _LOG_LINES = 0, 1, 2, 3, 4
_JOB_QUEUE = Table("job_queue", MetaData(), Column("run_id", Text))
"""The work queue's rows of a run (their results included) go with a removed run."""


class PostgresStateStore(queries.SQLRunQueries, SQLIdentity, SQLRetention, sql_audit.SQLAudit,
                         SQLDataKeys, PgAdmin):
    """A `StateStore` in PostgreSQL (`store = "postgres"`, `database_url = "postgresql://..."`;
    `?schema=NAME` keeps the tables in their own schema, created if missing)."""

    kind: ClassVar[str] = "state"
    name: ClassVar[str] = "postgres"
    _ALSO = (_JOB_QUEUE, LOG_LINES)
    _APPEND_LOCK = f"SELECT pg_advisory_xact_lock(hashtextextended('log_lines', {_LOG_LINES}))"

    def __init__(self, url: str, pool: PoolOptions = DEFAULT_POOL) -> None:
        self.target = PgTarget.parse(url)
        self.pool_options = pool
        self._write: psycopg.AsyncConnection[Any] | None = None
        self._pool: AsyncConnectionPool[Any] | None = None
        self._locks: psycopg.AsyncConnection[Any] | None = None
        self._engine: Engine | None = None
        self._write_lock = asyncio.Lock()
        self._claimed: set[str] = set()
        self._known_runs: set[str] = set()
        self._partitions_until = 0.0
        self.calls = StoreCalls(self.name)

    @classmethod
    def from_settings(cls, settings: Settings) -> PostgresStateStore:
        return cls(PgTarget.required(settings).url, PoolOptions.from_settings(settings))

    # ------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        if self._write is not None:
            return
        self._partitions_until = await asyncio.to_thread(self._prepare)
        pool = self.pool_options.pool(self.target.dsn, self.target.connect_kwargs(True))
        try:
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        except psycopg.OperationalError as exc:
            await pool.close()
            raise self.target.unreachable(exc) from None
        self._pool = pool
        self._write = await self.target.connect_async()
        self._locks = await self.target.connect_async(autocommit=True)
        self._engine = create_engine("postgresql+psycopg://", creator=self.target.connect,
                                     pool_size=2, max_overflow=4, pool_pre_ping=True)

    def _prepare(self) -> float:
        with self.target.connect(create_schema=True, autocommit=True) as conn:
            migrate(conn)
            return ensure_partitions(conn, time.time())

    async def close(self) -> None:
        for conn in (self._write, self._locks):
            if conn is not None:
                await conn.close()
        self._write = self._locks = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        self._claimed.clear()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _conn(self, conn: psycopg.AsyncConnection[Any] | None) -> psycopg.AsyncConnection[Any]:
        if conn is None:
            raise RuntimeError(f"state store {self.target} is not open")
        return conn

    async def _reopened(self, conn: psycopg.AsyncConnection[Any] | None,
                        autocommit: bool) -> psycopg.AsyncConnection[Any] | None:
        """A new session in place of `conn` if the last call found it ended (a database
        restart, a killed backend), else None: a lost session costs one failed call."""
        if not self._conn(conn).closed:
            return None
        try:
            return await self.target.connect_async(autocommit=autocommit)
        except ConfigError as exc:  # still unreachable
            raise StoreError(exc.message, hint=exc.hint) from None

    async def _writer(self) -> psycopg.AsyncConnection[Any]:
        self._write = await self._reopened(self._write, False) or self._write
        return self._conn(self._write)

    def _reading(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        """A connection of the pool for one read (autocommit); a pool that cannot give one
        within `pool_timeout` raises PoolTimeout, a psycopg.Error."""
        if self._pool is None:
            raise RuntimeError(f"state store {self.target} is not open")
        return self._pool.connection()

    async def _locker(self) -> psycopg.AsyncConnection[Any]:
        """The session holding this process's advisory locks. When it ended, so did its
        locks: on the new session the claims are taken again where still free; those
        another process took meanwhile are no longer ours (its guarded writes then make
        this process let go of the run)."""
        fresh = await self._reopened(self._locks, True)
        if fresh is None:
            return self._conn(self._locks)
        self._locks = fresh
        lost = set()
        for run_id in sorted(self._claimed):
            if not await self._try_lock(_CLAIMS, run_id):
                lost.add(run_id)
        self._claimed -= lost
        if lost:
            log.warning("claims on runs %s ended with a lost database session and were "
                        "taken by another process", ", ".join(sorted(lost)))
        return fresh

    # ------------------------------------------------------------ writes

    @property
    def audit_database(self) -> str | None:
        """The database whose audit trail this store writes (shared with a template store
        on the same database and schema)."""
        return self.target.key

    @observed("create_run")
    async def create_run(self, run: RunRecord, jobs: Sequence[JobRecord],
                         audit: Sequence[AuditEntry] = ()) -> None:
        if run.created_at >= self._partitions_until:
            self._partitions_until = await asyncio.to_thread(self._prepare)
        async with self._writing(f"creating run {run.id!r}") as conn, conn.cursor() as cur:
            await cur.execute(f"SELECT pg_advisory_xact_lock(hashtextextended(%s, {_RUN_IDS}))",
                              (self._lock_name(run.id),))
            await cur.execute("SELECT 1 FROM runs WHERE id = %s", (run.id,))
            if await cur.fetchone() is not None:
                raise Conflict(f"creating run {run.id!r} was rejected, nothing was written: "
                               "a run with this id exists")
            await cur.execute(sql.INSERT_RUN, sql.RUN_PARAMS(run_row(run)))
            if jobs:
                await cur.executemany(sql.INSERT_JOB, [sql.JOB_PARAMS(job_row(j))
                                                       for j in jobs])
            await _append_audit(cur, audit)
        self._known_runs.add(run.id)

    @observed("apply")
    async def apply(self, changes: Changes) -> None:
        if not changes:
            return
        runs = [sql.RUN_PARAMS(run_row(r)) | {"was": _value(changes.was_run.get(r.id))}
                for r in changes.runs.values()]
        jobs = [sql.JOB_PARAMS(job_row(j)) | {"was": _value(changes.was_job.get(k))}
                for k, j in changes.jobs.items()]
        async with self._writing("applying changes") as conn, conn.cursor() as cur:
            stale = await _stale_runs(cur, sql.UPSERT_RUN, runs, list(changes.runs))
            if jobs:
                await self._require_runs(cur, {k[0] for k in changes.jobs})
                stale |= await _stale_runs(cur, sql.UPSERT_JOB, jobs,
                                           [k[0] for k in changes.jobs])
            if stale:
                raise StaleState(f"runs {', '.join(sorted(stale))} were changed by another "
                                 "process; nothing of this batch was written",
                                 tuple(sorted(stale)))
            if changes.attempts:
                await cur.executemany(sql.UPSERT_ATTEMPT, [
                    sql.ATTEMPT_PARAMS(attempt_row(a)) for a in changes.attempts.values()])
            await _append_audit(cur, changes.audit)

    async def _require_runs(self, cur: psycopg.AsyncCursor[Any], run_ids: set[str]) -> None:
        """Jobs only of stored runs (what a foreign key would check: `runs` is partitioned
        by time, so `jobs` cannot reference it). Runs seen once are remembered."""
        unknown = run_ids - self._known_runs
        if not unknown:
            return
        await cur.execute("SELECT id FROM runs WHERE id = ANY(%s)", (list(unknown),))
        found = {str(r[0]) for r in await cur.fetchall()}
        if unknown - found:
            raise Conflict(f"applying changes was rejected, nothing was written: jobs of "
                           f"unknown run(s) {', '.join(sorted(unknown - found))}")
        self._known_runs |= found

    def _writing(self, what: str) -> _Transaction:
        return _Transaction(self._writer, self._write_lock, what, str(self.target))

    # ------------------------------------------------------------ reads

    @observed("load_run")
    async def load_run(self, run_id: str, *, attempts: bool = True) -> RunSnapshot | None:
        try:
            async with self._reading() as conn, conn.transaction(), conn.cursor() as cur:
                await cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                await cur.execute(sql.SELECT_RUN, (run_id,))
                run = await _one(cur)
                if run is None:
                    return None
                await cur.execute(sql.SELECT_JOBS, (run_id,))
                jobs = [job_record(m) for m in await _all(cur)]
                found = []
                if attempts:
                    await cur.execute(sql.SELECT_ATTEMPTS, (run_id,))
                    found = [attempt_record(m) for m in await _all(cur)]
        except psycopg.Error as exc:
            raise StoreError(f"loading run {run_id!r} failed: {exc}") from exc
        return RunSnapshot(run=run_record(run), jobs={j.key: j for j in jobs}, attempts=found)

    @observed("load_attempts")
    async def load_attempts(self, run_id: str,
                            keys: Sequence[tuple[str, int]]) -> list[AttemptRecord]:
        wanted = sorted(set(keys))
        if not wanted:
            return []
        try:
            async with self._reading() as conn, conn.cursor() as cur:
                await cur.execute(sql.SELECT_SOME_ATTEMPTS, (
                    run_id, [key for key, _ in wanted], [number for _, number in wanted]))
                return [attempt_record(m) for m in await _all(cur)]
        except psycopg.Error as exc:
            raise StoreError(f"loading attempts of run {run_id!r} failed: {exc}") from exc

    @observed("run_states")
    async def run_states(self, run_ids: Sequence[str]) -> dict[str, RunState]:
        if not run_ids:
            return {}
        rows = await self._fetch("SELECT id, state FROM runs WHERE id = ANY(%s)",
                                 (list(run_ids),))
        return {str(r[0]): RunState(r[1]) for r in rows}

    @observed("unfinished_runs")
    async def unfinished_runs(self) -> list[str]:
        rows = await self._fetch("SELECT id FROM runs WHERE state = ANY(%s) "
                                 "ORDER BY created_at, id", (_UNFINISHED,))
        return [str(r[0]) for r in rows]

    async def _fetch(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            async with self._reading() as conn:
                cur = await conn.execute(query.encode(), params)
                return await cur.fetchall()
        except psycopg.Error as exc:
            raise StoreError(f"reading the store failed: {exc}") from exc

    async def _query(self, fn: Callable[[Connection], T]) -> T:
        if self._engine is None:
            raise RuntimeError(f"state store {self.target} is not open")
        engine = self._engine

        def call() -> T:
            with engine.begin() as conn:
                return fn(conn)
        return await asyncio.to_thread(call)

    # ------------------------------------------------------------ claims

    @observed("claim_run")
    async def claim_run(self, run_id: str) -> bool:
        if run_id in self._claimed:
            return False
        taken = await self._try_lock(_CLAIMS, run_id)
        if taken:
            self._claimed.add(run_id)
        return taken

    @observed("release_run")
    async def release_run(self, run_id: str) -> None:
        if run_id in self._claimed:
            self._claimed.discard(run_id)
            await self._unlock(_CLAIMS, run_id)

    @observed("lead")
    async def lead(self, role: str) -> bool:
        """Whether this process leads `role` (e.g. the cron scheduler) among every process
        on this database: a session advisory lock, given up only when this session ends.
        Asked of the database every time (re-taking a lock one holds is a no-op), so a
        leader whose session ended learns it before another leader acts beside it."""
        return await self._try_lock(_LEADERS, role)

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[None]:
        """Hold lock `name` against every other process on this database (admission holds
        one per workflow while it counts runs and starts one). Within one process callers
        must serialise themselves: a session's advisory locks are re-entrant."""
        while not await self._try_lock(_EXCLUSIVE, name):
            await asyncio.sleep(EXCLUSIVE_RETRY)
        try:
            yield
        finally:
            await self._unlock(_EXCLUSIVE, name)

    async def _try_lock(self, space: int, name: str) -> bool:
        return await self._lock_call(
            f"SELECT pg_try_advisory_lock(hashtextextended(%s, {space}))", name)

    async def _unlock(self, space: int, name: str) -> None:
        try:
            await self._lock_call(
                f"SELECT pg_advisory_unlock(hashtextextended(%s, {space}))", name)
        except StoreError:
            if not self._conn(self._locks).closed:
                raise  # else the lock ended with its session: released all the same

    def _lock_name(self, name: str) -> str:
        """Advisory locks are per database, not per schema: the schema is part of the name,
        so two deployments in two schemas of one database never share a lock."""
        return f"{self.target.schema}:{name}"

    async def _lock_call(self, query: str, name: str) -> bool:
        try:
            conn = await self._locker()
            cur = await conn.execute(query.encode(), (self._lock_name(name),))
            row = await cur.fetchone()
        except psycopg.Error as exc:
            raise StoreError(f"the advisory lock on {name!r} failed: {exc}") from exc
        return bool(row and row[0])

    # ------------------------------------------------------------ documents

    @observed("load_document")
    async def load_document(self, name: str) -> Any:
        """A small JSON document every server shares (the cron schedule marks), or None."""
        rows = await self._fetch("SELECT value FROM documents WHERE name = %s", (name,))
        return rows[0][0] if rows else None

    @observed("save_document")
    async def save_document(self, name: str, value: Any) -> None:
        async with self._writing(f"saving document {name!r}") as conn:
            await conn.execute(
                b"INSERT INTO documents (name, value) VALUES (%s, %s) ON CONFLICT (name) "
                b"DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
                (name, Json(value)))

    # ------------------------------------------------------------ operations

    async def backup(self, target: Path) -> int:
        """`pg_dump` of this store's schema (custom format); returns the run count."""
        return await asyncio.to_thread(dump_database, self.target, target)

    async def retire(self, cutoff: float, archive: Path | None,
                     dry_run: bool = False) -> list[Retired]:
        """`baseshift retention`: drop (after archiving) the monthly partitions of runs
        that end before `cutoff`; see plugins/storage/pg_retention.py."""
        return await asyncio.to_thread(retire_before, self.target, cutoff, archive, dry_run)

    async def restore(self, source: Path) -> int:
        """Replace this schema's content with a dump's (`pg_restore`); returns the run count."""
        return await asyncio.to_thread(restore_database, self.target, source)


class _Transaction:
    """One write transaction on the store's write connection, serialised in this process;
    database errors become Conflict (constraints) or StoreError, the transaction rolled back."""

    def __init__(self, connect: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]],
                 lock: asyncio.Lock, what: str, where: str) -> None:
        self.connect, self.lock, self.what, self.where = connect, lock, what, where
        self._tx: Any = None

    async def __aenter__(self) -> psycopg.AsyncConnection[Any]:
        await self.lock.acquire()
        try:
            conn = await self.connect()
            self._tx = conn.transaction()
            await self._tx.__aenter__()
        except psycopg.Error as exc:
            self.lock.release()
            raise StoreError(f"{self.what} failed, nothing was written: {exc}",
                             hint=f"check the database {self.where}") from exc
        except BaseException:
            self.lock.release()
            raise
        return conn

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: Any) -> None:
        try:
            await self._tx.__aexit__(exc_type, exc, tb)
        except psycopg.Error as error:
            raise StoreError(f"{self.what} failed: {error}") from error
        finally:
            self.lock.release()
        if isinstance(exc, psycopg.errors.IntegrityError):
            raise Conflict(f"{self.what} was rejected, nothing was written: {exc}") from exc
        if isinstance(exc, psycopg.Error):
            raise StoreError(f"{self.what} failed, nothing was written: {exc}",
                             hint=f"check the database {self.where}") from exc


async def _append_audit(cur: psycopg.AsyncCursor[Any], entries: Sequence[AuditEntry]) -> None:
    """Append `entries` to the audit trail in the cursor's transaction, the head locked."""
    if not entries:
        return
    await cur.execute(sql_audit.PG_HEAD)
    rows, head = sql_audit.pg_records(tuple(await cur.fetchone() or (0, GENESIS)), entries)
    await cur.executemany(sql_audit.PG_INSERT, rows)
    await cur.execute(sql_audit.PG_UPDATE_HEAD, head)


async def _stale_runs(cur: psycopg.AsyncCursor[Any], statement: str,
                      rows: list[dict[str, Any]], run_ids: list[str]) -> set[str]:
    """Run a guarded upsert for each row (row i belongs to run_ids[i]); the runs of the rows
    it did not write because their stored state had moved on."""
    if not rows:
        return set()
    await cur.executemany(statement.encode(), rows, returning=True)
    stale = set()
    for run_id in run_ids:
        if await cur.fetchone() is None:
            stale.add(run_id)
        cur.nextset()
    return stale


async def _one(cur: psycopg.AsyncCursor[Any]) -> dict[str, Any] | None:
    row = await cur.fetchone()
    if row is None:
        return None
    assert cur.description is not None
    return dict(zip([d.name for d in cur.description], row, strict=True))


async def _all(cur: psycopg.AsyncCursor[Any]) -> list[dict[str, Any]]:
    assert cur.description is not None
    names = [d.name for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]


def _value(state: Any) -> str | None:
    return None if state is None else str(state.value)
