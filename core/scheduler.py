"""The ready queue: priority with ageing, under a global and a per-workflow concurrency limit.

A ready job's effective priority is `base_priority + wait_seconds * 0.1` (the plan's ageing
rule), so a low-priority job that has waited long enough overtakes newer high-priority ones.
Because every queued job ages at the same rate, ordering by `base - 0.1 * ready_at` gives the
same order at any instant; that key never changes, so a plain heap stays correct without
re-scoring anything as time passes.
"""
from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

AGEING_PER_SECOND = 0.1

T = TypeVar("T", bound=Hashable)


def effective_priority(base: float, ready_at: float, now: float) -> float:
    """The plan's ageing rule, for display and tests."""
    return base + (now - ready_at) * AGEING_PER_SECOND


@dataclass
class _Lane(Generic[T]):
    limit: int | None
    running: int = 0
    heap: list[tuple[float, int, T]] = field(default_factory=list)

    @property
    def has_room(self) -> bool:
        return self.limit is None or self.running < self.limit


class ReadyQueue(Generic[T]):
    """Jobs waiting for a slot. `pop()` returns the best job that may start now, or None."""

    def __init__(self, max_parallel: int) -> None:
        self.max_parallel = max_parallel
        self.running = 0
        self._lanes: dict[str, _Lane[T]] = {}
        self._seq = itertools.count()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def set_limit(self, lane: str, limit: int | None) -> None:
        """Limit how many jobs of one lane (a workflow name) run at once; None = no limit."""
        self._lane(lane).limit = limit

    def push(self, item: T, lane: str, priority: float, ready_at: float) -> None:
        key = -(priority - AGEING_PER_SECOND * ready_at)
        heapq.heappush(self._lane(lane).heap, (key, next(self._seq), item))
        self._size += 1

    def pop(self) -> tuple[T, str] | None:
        """Take the highest-priority job whose lane has room, counting it as running."""
        if self.running >= self.max_parallel:
            return None
        best: tuple[float, int, str] | None = None
        for name, lane in self._lanes.items():
            if lane.heap and lane.has_room:
                key, seq, _ = lane.heap[0]
                if best is None or (key, seq) < best[:2]:
                    best = (key, seq, name)
        if best is None:
            return None
        lane = self._lanes[best[2]]
        _, _, item = heapq.heappop(lane.heap)
        lane.running += 1
        self.running += 1
        self._size -= 1
        return item, best[2]

    def release(self, lane: str) -> None:
        """A job of `lane` stopped running: free its slot."""
        self._lane(lane).running -= 1
        self.running -= 1

    def remove(self, predicate: object) -> list[T]:
        """Drop queued items for which `predicate(item)` is true (used by cancel)."""
        assert callable(predicate)
        removed: list[T] = []
        for lane in self._lanes.values():
            keep = [e for e in lane.heap if not predicate(e[2])]
            removed.extend(e[2] for e in lane.heap if predicate(e[2]))
            heapq.heapify(keep)
            lane.heap = keep
        self._size -= len(removed)
        return removed

    def _lane(self, name: str) -> _Lane[T]:
        lane = self._lanes.get(name)
        if lane is None:
            lane = self._lanes[name] = _Lane(limit=None)
        return lane
