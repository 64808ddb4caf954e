"""Waiters: who waits for a run to finish is answered once, with what happened to it."""
from __future__ import annotations

import asyncio

import pytest

from baseshift.core.errors import NotFound, StoreError
from baseshift.core.records import RunRecord, RunSnapshot
from baseshift.core.states import RunState
from baseshift.core.waiters import Waiters
from baseshift.plugins.storage.memory import MemoryStateStore


def record(run_id: str, state: RunState = RunState.COMPLETED) -> RunRecord:
    return RunRecord(run_id, "p", "1.0.0", "", "<memory>", {}, state=state)


async def waiting(waiters: Waiters, run_id: str) -> asyncio.Task[RunRecord]:
    task = asyncio.create_task(waiters.wait(run_id))
    await asyncio.sleep(0)  # it is waiting now
    return task


async def test_finished_answers_every_waiter_of_that_run_only() -> None:
    waiters = Waiters()
    first, second, other = [await waiting(waiters, r) for r in ("r1", "r1", "r2")]
    waiters.finished("r1", record("r1"))
    assert (await first).id == (await second).id == "r1"
    assert not other.done()
    waiters.cancel_all()
    with pytest.raises(asyncio.CancelledError):
        await other


async def test_failed_run_raises_for_its_waiters() -> None:
    waiters = Waiters()
    task = await waiting(waiters, "r1")
    waiters.failed("r1", RuntimeError("bug"))
    with pytest.raises(RuntimeError, match="bug"):
        await task


async def test_the_failure_that_stopped_the_engine_reaches_every_waiter_now_and_later() -> None:
    waiters = Waiters()
    task = await waiting(waiters, "r1")
    failure = StoreError("the database is gone")
    waiters.stopped_by(failure)
    assert waiters.failure is failure
    with pytest.raises(StoreError):
        await task
    with pytest.raises(StoreError):
        await waiters.wait("r2")


async def test_cancel_all_cancels_the_waiters() -> None:
    waiters = Waiters()
    task = await waiting(waiters, "r1")
    waiters.cancel_all()
    with pytest.raises(asyncio.CancelledError):
        await task


async def let_go(store: MemoryStateStore, error: StoreError | None = None) -> RunRecord:
    waiters = Waiters()
    task = await waiting(waiters, "r1")
    waiters.let_go("r1", store, error)
    return await asyncio.wait_for(task, 1)


async def test_a_run_let_go_is_answered_from_the_store_and_its_claim_freed() -> None:
    store = MemoryStateStore()
    await store.create_run(record("r1"), [])
    assert await store.claim_run("r1")
    assert (await let_go(store)).state is RunState.COMPLETED  # finished by another process
    assert await store.claim_run("r1")  # the claim was freed


async def test_a_run_interrupted_by_the_store_raises_for_its_waiters() -> None:
    store = MemoryStateStore()
    await store.create_run(record("r1", RunState.RUNNING), [])
    with pytest.raises(StoreError, match="was interrupted: lost the connection"):
        await let_go(store, StoreError("lost the connection"))


async def test_a_run_gone_from_the_store_is_not_found() -> None:
    with pytest.raises(NotFound, match="gone from the store"):
        await let_go(MemoryStateStore())


async def test_a_store_failing_while_answering_raises_a_store_error() -> None:
    class Failing(MemoryStateStore):
        async def load_run(self, run_id: str, *, attempts: bool = True) -> RunSnapshot | None:
            raise StoreError("down")

    with pytest.raises(StoreError, match="was interrupted: down"):
        await let_go(Failing())
