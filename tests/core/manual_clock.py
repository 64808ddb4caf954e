"""A clock the test moves by hand, for the cron scheduler's tests (nothing sleeps for real)."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

T0 = datetime(2025, 3, 29, 12, 0, 30, tzinfo=UTC)
"""Where the schedule tests start their clocks."""


class ManualClock:
    """A clock the test moves; `sleep` returns once the test moved it far enough."""

    def __init__(self, now: datetime) -> None:
        self._now = now
        self.sleeps: list[float] = []
        self._moved = asyncio.Event()
        self.sleeping = asyncio.Event()

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        until = self._now + timedelta(seconds=seconds)
        self.sleeps.append(seconds)
        while self._now < until:
            self._moved.clear()
            self.sleeping.set()
            await self._moved.wait()
        self.sleeping.clear()

    def move_to(self, when: datetime) -> None:
        self._now = when
        self._moved.set()
