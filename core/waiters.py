"""Who waits for a run to finish (`Engine.wait`), and what each waiter is answered.

A waiter gets the run's final record; or, when the engine stopped on a failure of its
store, that failure (and so does anyone who waits later); or, when the run stopped being
executed here (another process took it over, the store failed), what the store holds.
"""
from __future__ import annotations

import asyncio

from .errors import BaseShiftError, NotFound, StoreError
from .protocols import StateStore
from .records import RunRecord


class Waiters:
    """The futures of the callers waiting for each run executed here."""

    def __init__(self) -> None:
        self._futures: dict[str, list[asyncio.Future[RunRecord]]] = {}
        self._failure: BaseException | None = None
        self._background: set[asyncio.Task[None]] = set()

    @property
    def failure(self) -> BaseException | None:
        """What stopped the engine, if it stopped on a failure."""
        return self._failure

    async def wait(self, run_id: str) -> RunRecord:
        """Until the run is answered; at once the failure that stopped the engine."""
        if self._failure is not None:
            raise self._failure
        future: asyncio.Future[RunRecord] = asyncio.get_running_loop().create_future()
        self._futures.setdefault(run_id, []).append(future)
        return await future

    def finished(self, run_id: str, record: RunRecord) -> None:
        for future in self._futures.pop(run_id, []):
            if not future.done():
                future.set_result(record)

    def failed(self, run_id: str, exc: BaseException) -> None:
        """The run stopped being executed here because of `exc` (an internal error)."""
        for future in self._futures.pop(run_id, []):
            if not future.done():
                future.set_exception(exc)

    def stopped_by(self, exc: BaseException) -> None:
        """The engine stopped on `exc`: every waiter, present and future, gets it."""
        self._failure = exc
        for futures in self._futures.values():
            for future in futures:
                if not future.done():
                    future.set_exception(exc)

    def cancel_all(self) -> None:
        """The engine stops: nobody is answered."""
        for futures in self._futures.values():
            for future in futures:
                if not future.done():
                    future.cancel()

    def let_go(self, run_id: str, store: StateStore, error: StoreError | None) -> None:
        """The run is no longer executed here: in the background, free its claim, then
        answer its waiters from the store (`error`: the store failure that let it go)."""
        task = asyncio.get_running_loop().create_task(
            _settled_elsewhere(run_id, self._futures.pop(run_id, []), store, error))
        self._background.add(task)
        task.add_done_callback(self._background.discard)


async def _settled_elsewhere(run_id: str, waiters: list[asyncio.Future[RunRecord]],
                             store: StateStore, error: StoreError | None) -> None:
    """Free the claim of a run let go, and answer its waiters with the stored record (or,
    when it is unfinished because the store failed, with that failure)."""
    try:
        await store.release_run(run_id)
        snapshot = await store.load_run(run_id, attempts=False)
    except BaseShiftError as exc:
        snapshot, error = None, error or StoreError(str(exc))
    for future in waiters:
        if future.done():
            continue
        if snapshot is not None and (error is None or snapshot.run.state.finished):
            future.set_result(snapshot.run)
        elif error is not None:
            future.set_exception(StoreError(
                f"run '{run_id}' was interrupted: {error.message}",
                hint="it resumes from its stored state when a server adopts it, or "
                "with `baseshift resume`"))
        else:
            future.set_exception(NotFound(f"run '{run_id}' is gone from the store"))
