"""Workers and the PostgreSQL queue after a killed session: no job fails, no result is
renewed for ever."""
from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from baseshift.core.app.application import BaseShift
from baseshift.core.settings import Settings
from baseshift.core.states import RunState
from baseshift.plugins.queue.worker_loop import Worker
from baseshift.plugins.storage.pg_connect import PgTarget
from tests.scaleout.conftest import FANOUT, load


def kill(settings: Settings, conn: psycopg.AsyncConnection[Any] | None) -> None:
    """End a session from the server side and wait until it is gone."""
    assert conn is not None
    with PgTarget.required(settings).connect(autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (conn.info.backend_pid,))


def sql(settings: Settings, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with PgTarget.required(settings).connect(autocommit=True) as conn:
        cur = conn.execute(query.encode(), params)
        return cur.fetchall() if cur.description else []


async def test_a_worker_whose_store_session_was_killed_fails_no_job(
        settings: Settings, workflows: Path, start_worker: Callable[..., Any]) -> None:
    """The worker reads runs through its state store's own sessions: losing one (a database
    restart) must not fail the attempts it then claims, nor every later one."""
    async with BaseShift(settings) as bs, start_worker() as worker:
        plan = load(bs, workflows, "doubling", FANOUT)
        first = await bs.engine.submit(plan, {"n": 3})
        await asyncio.wait_for(bs.engine.wait(first), 30)
        for conn in list(worker.bs.store._pool._pool):  # type: ignore[attr-defined]
            kill(settings, conn)  # the idle connections of its read pool
        second = await bs.engine.submit(plan, {"n": 3})
        record = await asyncio.wait_for(bs.engine.wait(second), 30)
    assert (record.state, record.error) == (RunState.COMPLETED, None)
    assert worker.executed == 8


async def test_a_result_that_could_not_be_stored_is_not_renewed_forever(
        settings: Settings) -> None:
    """A worker that failed to store a result (its session died) must stop renewing that
    row, even while it keeps executing others: its lease then runs out and the server runs
    the attempt again, instead of waiting as long as the worker stays busy."""
    mine = dataclasses.replace(settings, queue="local")
    async with BaseShift(mine) as bs:
        worker = Worker(bs, PgTarget.required(mine), lease=2)
        rows = sql(mine, "INSERT INTO job_queue (owner, run_id, job_key, number, state, worker, "
                   "leased_until) SELECT 'server-x', 'r', k, 1, 'leased', %s, "
                   "'2000-01-01'::timestamptz FROM unnest(ARRAY['busy', 'done']) AS k "
                   "RETURNING id, job_key", (worker.id,))
        ids = {str(key): int(row_id) for row_id, key in rows}
        busy = asyncio.create_task(asyncio.Event().wait())
        worker.active[ids["busy"]] = busy
        try:
            kill(mine, await worker._db.connect())
            worker._finished(ids["done"], ("out", None, False, ""))
            assert worker._storing is not None
            await worker._storing  # fails: the session is gone
            await worker._renew()
        finally:
            busy.cancel()
            await worker._db.close()
    renewed = dict(sql(mine, "SELECT job_key, leased_until > now() FROM job_queue"))
    assert renewed == {"busy": True, "done": False}
