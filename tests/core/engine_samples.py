"""Job functions for engine tests: they record what ran, when, and can fail or hang."""
from __future__ import annotations

import asyncio
import itertools
from typing import Any

EVENTS: list[tuple[str, str, int]] = []
_clock = itertools.count()
ACTIVE = {"now": 0, "peak": 0}
FLAGS: dict[str, Any] = {}


def reset() -> None:
    EVENTS.clear()
    ACTIVE.update(now=0, peak=0)
    FLAGS.clear()


async def record(tag: str, fail: bool = False, **_: Any) -> dict[str, Any]:
    EVENTS.append(("start", tag, next(_clock)))
    ACTIVE["now"] += 1
    ACTIVE["peak"] = max(ACTIVE["peak"], ACTIVE["now"])
    try:
        await asyncio.sleep(0)
    finally:
        ACTIVE["now"] -= 1
    EVENTS.append(("end", tag, next(_clock)))
    if fail:
        raise RuntimeError(f"{tag} failed on purpose")
    return {"tag": tag}


async def hang(tag: str) -> None:
    EVENTS.append(("start", tag, next(_clock)))
    try:
        await asyncio.sleep(3600)
    finally:
        EVENTS.append(("stopped", tag, next(_clock)))


def fail_until(tag: str, times: int) -> dict[str, Any]:
    count = FLAGS[tag] = FLAGS.get(tag, 0) + 1
    if count <= times:
        raise RuntimeError(f"{tag}: failure {count} of {times}")
    return {"calls": count}


def switch(tag: str) -> str:
    if FLAGS.get(tag):
        return "fixed"
    raise RuntimeError(f"{tag} is broken")


def measure(**kwargs: Any) -> dict[str, int]:
    """The length of each argument: what a job learnt of a value without repeating it."""
    return {k: len(str(v)) for k, v in kwargs.items()}


def echo(**kwargs: Any) -> dict[str, Any]:
    return kwargs
