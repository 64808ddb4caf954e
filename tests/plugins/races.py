"""Real concurrency for store tests: calls released together, each on a thread and event
loop of its own (the SQLite store blocks its thread while it works, so only threads make
its calls overlap)."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

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
