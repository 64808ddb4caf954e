"""Retry timers: items come out by due time, and one wake-up is scheduled for the earliest."""
from __future__ import annotations

import asyncio
import time

from baseshift.core.retry_timers import RetryTimers

SETTLE = 0.05
"""Long enough for a wake-up scheduled for now to have run (never asserted as a timing)."""


def test_due_takes_what_is_due_earliest_first_and_keeps_the_rest() -> None:
    timers: RetryTimers[str] = RetryTimers(lambda: None)
    for due, item in [(5.0, "b"), (1.0, "a"), (9.0, "c"), (5.0, "b2")]:
        timers.add(due, item)
    assert timers.due(5.0) == ["a", "b", "b2"]  # same due time: in the order added
    assert timers.due(5.0) == []
    assert len(timers) == 1
    assert timers.due(10.0) == ["c"]


async def test_arm_wakes_once_for_the_earliest_item() -> None:
    woken: list[float] = []
    timers: RetryTimers[str] = RetryTimers(lambda: woken.append(time.time()))
    timers.add(time.time() - 1, "late")
    timers.add(time.time() - 2, "later")
    timers.arm()
    timers.arm()  # re-arming replaces the wake-up, never adds one
    await asyncio.sleep(SETTLE)
    assert len(woken) == 1
    assert len(timers) == 2  # waking takes nothing: the round asks what is `due`


async def test_cancel_drops_the_wake_up_and_keeps_the_items() -> None:
    woken: list[str] = []
    timers: RetryTimers[str] = RetryTimers(lambda: woken.append("woken"))
    timers.add(time.time(), "x")
    timers.arm()
    timers.cancel()
    await asyncio.sleep(SETTLE)
    assert woken == []
    assert len(timers) == 1


async def test_nothing_pending_schedules_nothing() -> None:
    woken: list[str] = []
    timers: RetryTimers[str] = RetryTimers(lambda: woken.append("woken"))
    timers.add(time.time(), "x")
    assert timers.due(time.time()) == ["x"]
    timers.arm()
    await asyncio.sleep(SETTLE)
    assert woken == []
