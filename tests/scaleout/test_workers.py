"""Workers execute the attempts a scheduling process queues in PostgreSQL."""
from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.errors import ConfigError
from baseshift.core.settings import Settings
from baseshift.core.states import JobState, RunState
from tests.scaleout.conftest import FANOUT, load

SLOW = """
workflow slow {
  version "1.0.0"
  job wait uses shell { with { command: "sleep 30" } }
}
"""


def queue_rows(settings: Settings) -> int:
    url, schema = str(settings.database_url).split("?schema=")
    with psycopg.connect(url, options=f"-c search_path={schema}") as conn:
        row = conn.execute("SELECT count(*) FROM job_queue").fetchone()
    assert row is not None
    return int(row[0])


async def test_attempts_run_on_the_worker_not_in_the_scheduler(
        settings: Settings, workflows: Path, start_worker: Callable[..., Any]) -> None:
    async with BaseShift(settings) as bs, start_worker() as worker:
        plan = load(bs, workflows, "doubling", FANOUT)
        run_id = await bs.engine.submit(plan, {"n": 20})
        record = await asyncio.wait_for(bs.engine.wait(run_id), 60)
    assert record.state is RunState.COMPLETED
    assert record.outputs == {"doubled": [i * 2 for i in range(20)]}
    assert worker.executed == 21
    assert queue_rows(settings) == 0


async def test_cancel_stops_the_attempt_on_its_worker(
        settings: Settings, workflows: Path, start_worker: Callable[..., Any]) -> None:
    async with BaseShift(settings) as bs, start_worker() as worker:
        plan = load(bs, workflows, "slow", SLOW)
        run_id = await bs.engine.submit(plan, {})
        for _ in range(200):
            if worker.active:
                break
            await asyncio.sleep(0.05)
        assert worker.active, "the worker never took the attempt"
        await bs.runs.cancel(run_id)
        for _ in range(200):
            if not worker.active:
                break
            await asyncio.sleep(0.05)
        assert not worker.active, "the worker still runs the cancelled attempt"
        snapshot = await bs.store.load_run(run_id)
    assert snapshot is not None
    assert snapshot.run.state is RunState.CANCELLED
    assert snapshot.jobs["wait"].state is JobState.CANCELLED
    assert queue_rows(settings) == 0


LABELLED = """
workflow labelled {
  version "1.0.0"
  job anywhere uses python { with { function: "scaleout_steps:where" } }
  job train uses python {
    runs-on gpu
    with { function: "scaleout_steps:where" }
  }
}
"""


async def test_a_job_runs_only_on_a_worker_with_all_its_labels(
        settings: Settings, workflows: Path, start_worker: Callable[..., Any]) -> None:
    async with BaseShift(settings) as bs, start_worker() as plain:
        plan = load(bs, workflows, "labelled", LABELLED)
        run_id = await bs.engine.submit(plan, {})
        for _ in range(100):
            snapshot = await bs.store.load_run(run_id, attempts=False)
            assert snapshot is not None
            if snapshot.jobs["anywhere"].state is JobState.SUCCEEDED:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # time enough for the plain worker to take `train` if it would
        assert plain.executed == 1
        assert snapshot.jobs["train"].state is JobState.RUNNING  # queued, waiting for a gpu
        async with start_worker(labels=("gpu", "linux")) as gpu:
            record = await asyncio.wait_for(bs.engine.wait(run_id), 30)
    assert record.state is RunState.COMPLETED
    assert (plain.executed, gpu.executed) == (1, 1)


@pytest.mark.slow
async def test_a_worker_reconnects_after_its_database_connection_is_killed(
        settings: Settings, workflows: Path, start_worker: Callable[..., Any]) -> None:
    async with BaseShift(settings) as bs, start_worker() as worker:
        plan = load(bs, workflows, "doubling", FANOUT)
        first = await bs.engine.submit(plan, {"n": 3})
        await asyncio.wait_for(bs.engine.wait(first), 30)
        conn = await worker._db.connect()
        url, schema = str(settings.database_url).split("?schema=")
        with psycopg.connect(url) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        second = await bs.engine.submit(plan, {"n": 3})
        record = await asyncio.wait_for(bs.engine.wait(second), 30)
    assert record.state is RunState.COMPLETED
    assert worker.executed == 8


def test_the_postgres_queue_needs_the_postgres_store(pg_url: str, tmp_path: Path) -> None:
    bs = BaseShift(Settings(queue="postgres", database_url=pg_url, data_dir=tmp_path,
                            load_entrypoints=False))  # backends are built on first use
    with pytest.raises(ConfigError, match='queue = "postgres" needs store = "postgres"'):
        assert bs.queue


async def test_an_attempt_cancelled_while_being_queued_leaves_no_row(
        settings: Settings) -> None:
    from baseshift.core.protocols import QueuedAttempt
    from baseshift.plugins.queue.pg_queue import PostgresAttemptQueue

    async with BaseShift(dataclasses.replace(settings, queue="local")):  # migrates the schema
        pass
    queue = PostgresAttemptQueue.from_settings(settings)
    await queue.open()
    try:
        task = asyncio.ensure_future(queue.run(QueuedAttempt("r1", "a", 1)))
        await asyncio.sleep(0)  # queued in the outbox; its insert is about to start
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(200):  # until the insert that was in flight is done, and withdrawn
            if (queue._flushing is not None and queue._flushing.done()
                    and queue_rows(settings) == 0 and not queue._waiting):
                break
            await asyncio.sleep(0.05)
        assert queue_rows(settings) == 0
        assert queue._waiting == {}
    finally:
        await queue.close()


@pytest.mark.parametrize("lease", ["soon", 0, -3, True])
def test_a_bad_lease_is_a_configuration_error(settings: Settings, lease: object) -> None:
    bad = dataclasses.replace(settings, extra={"queue_postgres": {"lease": lease}})
    bs = BaseShift(bad)
    with pytest.raises(ConfigError, match="Config 'plugins.queue_postgres.lease' has value "
                       f"{lease!r}. Expected a positive number."):
        assert bs.queue
