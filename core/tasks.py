"""Stopping background tasks: cancel, then wait until each has really ended."""
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
