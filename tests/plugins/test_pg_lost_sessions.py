"""The PostgreSQL store after its sessions are killed: what a lost connection must not break.

A database restart, a failover or an idle-connection killer ends the store's sessions. The
store must come back on the next call (one failed call, not a dead process), and must not
go on believing it holds advisory locks that ended with the session."""
from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from baseshift.core.errors import StoreError
from baseshift.plugins.storage.pg_connect import PgTarget
from baseshift.plugins.storage.pg_store import PostgresStateStore
from baseshift.plugins.triggers.scheduler import Scheduler
from tests.core.manual_clock import T0, ManualClock
from tests.plugins.store_records import a_job, a_run

GONE_TRIES = 200
"""Polls (of 0.05 s) for a killed session's locks to be freed by the server."""



def kill(url: str, *connections: psycopg.AsyncConnection[Any] | None) -> None:
    """End these sessions from the server side and wait until they are gone."""
    with PgTarget.parse(url).connect(autocommit=True) as admin:
        for conn in connections:
            assert conn is not None
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (conn.info.backend_pid,))


def pooled(store: PostgresStateStore) -> list[psycopg.AsyncConnection[Any]]:
    """The idle connections of the store's read pool."""
    assert store._pool is not None
    return list(store._pool._pool)


async def fails_once_then(call: Any) -> Any:
    """The first call after a kill may fail (with a StoreError); the next one must work."""
    try:
        return await call()
    except StoreError:
        return await call()


async def test_the_store_reconnects_after_its_sessions_are_killed(
        pg_store: PostgresStateStore, pg_url: str) -> None:
    kill(pg_url, pg_store._write, pg_store._locks, *pooled(pg_store))
    await fails_once_then(lambda: pg_store.create_run(a_run("r1"), [a_job("a")]))
    snapshot = await fails_once_then(lambda: pg_store.load_run("r1"))
    assert snapshot is not None and set(snapshot.jobs) == {"a"}
    assert await pg_store.unfinished_runs() == ["r1"]
    assert await fails_once_then(lambda: pg_store.claim_run("r1"))


async def test_a_dead_session_is_a_store_error_not_a_driver_traceback(
        pg_store: PostgresStateStore, pg_url: str) -> None:
    kill(pg_url, pg_store._write)
    try:
        await pg_store.create_run(a_run("r1"), [a_job("a")])
    except Exception as exc:  # noqa: BLE001 - the point is which type escapes
        assert isinstance(exc, StoreError), f"{type(exc).__name__}: {exc}"


async def test_leadership_ends_with_the_session_that_held_it(pg_store: PostgresStateStore,
                                                            pg_url: str) -> None:
    other = PostgresStateStore(pg_url)
    await other.open()
    try:
        assert await pg_store.lead("cron")
        assert await pg_store.claim_run("r1")
        kill(pg_url, pg_store._locks)
        for _ in range(GONE_TRIES):
            if await other.lead("cron"):
                break
            await asyncio.sleep(0.05)
        assert await other.lead("cron")
        assert await other.claim_run("r1")
        # the old leader must learn that it no longer leads: two leaders fire twice
        assert not await fails_once_then(lambda: pg_store.lead("cron"))
        assert not await pg_store.claim_run("r1")
        await other.release_run("r1")
        assert await pg_store.claim_run("r1"), "a claim lost with a session is not held any more"
    finally:
        await other.close()


async def test_a_scheduler_leading_again_continues_from_the_stored_marks(
        make_baseshift: Any, tmp_path: Path, pg_url: str) -> None:
    """A cron leader that lost its session (and so the lead) and leads again later must
    load the marks the leader in between saved, not save its own stale ones over them."""
    marks = {"version": 1, "schedules": {"w": {"k": {"checked": "2025-03-29T12:10:00+00:00",
                                                    "fired": "2025-03-29T12:10:00+00:00"}}}}
    async with make_baseshift(store="postgres", database_url=pg_url,
                              workflows_dir=tmp_path / "none") as bs:
        clock = ManualClock(T0)
        scheduler = Scheduler(bs, clock=clock, recheck=60)
        scheduler.start()
        await clock.sleeping.wait()  # it leads, ticked, and sleeps
        other = PostgresStateStore(pg_url)
        await other.open()
        try:
            kill(pg_url, bs.store._locks)  # type: ignore[attr-defined]
            for _ in range(GONE_TRIES):
                if await other.lead("cron"):
                    break
                await asyncio.sleep(0.05)
            await other.save_document("schedules", marks)  # the leader in between
            for step in range(1, 4):  # the old leader finds out, then waits to lead
                clock.sleeping.clear()
                clock.move_to(T0 + timedelta(seconds=60 * step))
                await clock.sleeping.wait()
        finally:
            await other.close()  # the leader in between stops
        for _ in range(GONE_TRIES):
            clock.sleeping.clear()
            clock.move_to(clock.now() + timedelta(seconds=60))
            await clock.sleeping.wait()
            if scheduler._leading and clock.sleeps[-1] == 60:
                break
        await scheduler.stop()
        assert await bs.store.load_document("schedules") == marks
