"""Retry timers: jobs waiting before their next attempt wait here, never in a sleeping task.

A job waiting 30 s for its retry holds no slot and no task (docs/engine.md): its due time
sits in a heap, and exactly one wake-up is scheduled, for the earliest of them.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class RetryTimers(Generic[T]):
    """Items by due time; `wake` is called (once) when the earliest is due."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._heap: list[tuple[float, int, T]] = []
        self._seq = itertools.count()
        self._handle: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, due: float, item: T) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), item))

    def due(self, now: float) -> list[T]:
        """Take every item due at `now`, earliest first."""
        items = []
        while self._heap and self._heap[0][0] <= now:
            items.append(heapq.heappop(self._heap)[2])
        return items

    def arm(self) -> None:
        """Keep exactly one wake-up scheduled, for the earliest item (none when empty)."""
        self.cancel()
        if self._heap:
            delay = max(self._heap[0][0] - time.time(), 0.0) + 0.001
            self._handle = asyncio.get_running_loop().call_later(delay, self._wake)

    def cancel(self) -> None:
        """Drop the scheduled wake-up (the items stay)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
