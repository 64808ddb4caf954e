"""Real concurrency for store tests: calls released together, each on a thread and event
loop of its own (the SQLite store blocks its thread while it works, so only threads make
its calls overlap), and two stores on one database."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


async def race(*calls: Callable[[], Awaitable[T]]) -> list[T]:
    """Each call on a thread and event loop of its own, released together."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Awaitable[T]]) -> T:
        async def main() -> T:
            return await call()
        barrier.wait()
        return asyncio.run(main())

    return list(await asyncio.gather(*(asyncio.to_thread(run, c) for c in calls)))


@asynccontextmanager
async def two_sql_stores(kind: str, folder: Path) -> AsyncIterator[tuple[Any, Any]]:
    """Two open state stores of `kind` (postgres: a fresh schema; sqlite: a file in
    `folder`) on one database, as two servers of a fleet (or two processes) have."""
    from baseshift.plugins.storage.pg_store import PostgresStateStore
    from baseshift.plugins.storage.sqlite_store import SQLiteStateStore
    from tests.conftest import drop_pg_schema, fresh_pg_schema

    url = fresh_pg_schema() if kind == "postgres" else None
    make: Callable[[], Any] = (
        (lambda: PostgresStateStore(str(url))) if url is not None
        else lambda: SQLiteStateStore(f"sqlite:///{folder / 'baseshift.db'}"))
    stores = (make(), make())
    for s in stores:
        await s.open()
    try:
        yield stores
    finally:
        for s in stores:
            await s.close()
        if url is not None:
            drop_pg_schema(url)
