"""Live events for the server: observers subscribe to one run (or all) and get its events.

The hub is fed by a `track_event` plugin after each change is stored, so a subscriber never
sees a state the store does not hold. It is not the system of record: a subscriber that
falls too far behind is told so (`Lagged`) and should re-read the run from the store.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from .events import Event

QUEUE_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class Lagged:
    """Events were dropped for this subscriber; re-read state from the store."""

    run_id: str | None


class Subscription:
    """An async iterator over the events of one run (or of all runs, `run_id=None`)."""

    def __init__(self, run_id: str | None) -> None:
        self.run_id = run_id
        self._queue: asyncio.Queue[Event | Lagged] = asyncio.Queue(QUEUE_SIZE)
        self._lagged = False

    def offer(self, event: Event) -> None:
        if self._lagged:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self._lagged = True
            self._queue.get_nowait()
            self._queue.put_nowait(Lagged(self.run_id))

    def __aiter__(self) -> AsyncIterator[Event | Lagged]:
        return self

    async def __anext__(self) -> Event | Lagged:
        item = await self._queue.get()
        if isinstance(item, Lagged):
            self._lagged = False
        return item

    def drain(self) -> int:
        """Drop the events already waiting (a reader about to re-read the whole state);
        returns how many there were."""
        count = 0
        while not self._queue.empty():
            self._queue.get_nowait()
            count += 1
        self._lagged = False
        return count

    async def next(self, timeout: float) -> Event | Lagged | None:
        """The next event, or None if none came within `timeout` seconds (for keep-alives)."""
        try:
            return await asyncio.wait_for(self.__anext__(), timeout)
        except TimeoutError:
            return None


class EventHub:
    """Fan-out of stored events to in-process subscribers (SSE streams, triggers)."""

    def __init__(self) -> None:
        self._by_run: dict[str | None, set[Subscription]] = {}

    def publish(self, event: Event) -> None:
        for key in (event.run_id, None):
            for sub in self._by_run.get(key, ()):
                sub.offer(event)

    @property
    def subscribers(self) -> int:
        return sum(len(s) for s in self._by_run.values())

    @asynccontextmanager
    async def subscribe(self, run_id: str | None = None) -> AsyncIterator[Subscription]:
        sub = Subscription(run_id)
        self._by_run.setdefault(run_id, set()).add(sub)
        try:
            yield sub
        finally:
            subs = self._by_run.get(run_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_run[run_id]
