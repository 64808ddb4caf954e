"""Background tasks: stopping them (cancel, then wait until each has really ended), and the
backoff of those that retry a connection or a write until it works."""
from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel the given tasks (None stands for one never started) and wait for them to end,
    whatever they raise: a task still unwinding must not outlive the connection it uses."""
    running = [t for t in tasks if t is not None]
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)


class Backoff:
    """Waits that double from `first` up to `longest`. After a connection was lost they start
    again from `first` only if it stayed up for `longest` seconds, so a server that accepts a
    connection and drops it at once is retried at the slow pace, never in a hot loop."""

    def __init__(self, first: float = 0.1, longest: float = 5.0) -> None:
        self.first, self.longest = first, longest
        self.delay = first

    def next(self) -> float:
        """The wait before the next try; the one after is twice as long (at most `longest`)."""
        delay, self.delay = self.delay, min(self.delay * 2, self.longest)
        return delay

    def reset(self) -> None:
        """A try worked: the next failure waits `first` again."""
        self.delay = self.first

    def connected_for(self, seconds: float) -> None:
        """A connection ended after `seconds`: a stable one earns a quick first retry."""
        if seconds >= self.longest:
            self.reset()
