"""No-op job functions for the benchmarks (imported by the python executor)."""
from __future__ import annotations

from typing import Any


def noop(**_: Any) -> None:
    """A sync no-op: runs in a worker thread like any sync job function."""


async def anoop(**_: Any) -> None:
    """An async no-op: awaited on the event loop."""
