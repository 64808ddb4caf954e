"""A background task that does one round every `interval` seconds of a `Clock` until it is
stopped (the daily retention, the alert evaluations). A round that fails is logged and the
next one comes on time: one bad round must not end the task."""
from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod

from .clock import Clock, SystemClock
from .tasks import cancel_and_wait


class Periodic(ABC):
    """Subclasses say what a round does (`tick`), the task's name and what to log when a
    round fails; `start` and `stop` run and end the task."""

    task_name = "baseshift-periodic"
    failure = "a periodic round failed"

    def __init__(self, clock: Clock | None, interval: float, log: logging.Logger) -> None:
        self.clock: Clock = clock or SystemClock()
        self.interval = interval
        self._log = log
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=self.task_name)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # a failed round must not end the task
                self._log.exception(self.failure)
            await self.clock.sleep(self.interval)

    @abstractmethod
    async def tick(self) -> object:
        """One round; what it returns is for tests."""
