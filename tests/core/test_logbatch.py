"""The log batcher (core/app/logbatch.py) as the log shipper relies on it: a batch being
written when it stops is finished, not abandoned; a sink that is down at the stop costs
every line left, counted; a failing sink is warned about once, not at every interval."""
from __future__ import annotations

import asyncio
import logging

from baseshift.core.app.logbatch import Line, LogBatcher
from tests.log_support import json_log

log = logging.getLogger("baseshift.tests.logbatch")


async def test_stop_lets_the_batch_being_written_finish() -> None:
    writing, release = asyncio.Event(), asyncio.Event()
    written: list[str] = []

    async def slow(lines: list[Line]) -> None:
        writing.set()
        await release.wait()
        written.extend(x["message"] for x in lines)

    batcher = LogBatcher(slow, name="slow", interval=0.01)
    with json_log():
        batcher.start()
        log.info("one")
        await writing.wait()
        log.info("two")
        stopping = asyncio.create_task(batcher.stop())
        await asyncio.sleep(0)
        release.set()
        await stopping
    assert written == ["one", "two"] and (batcher.sent, batcher.dropped) == (2, 0)


async def test_a_sink_down_at_the_stop_costs_every_line_left_and_one_warning() -> None:
    async def down(lines: list[Line]) -> None:
        raise ConnectionError("no service")

    batcher = LogBatcher(down, name="down", batch=2, interval=0.01)
    with json_log() as (lines, _raw):
        batcher.start()
        for i in range(5):
            log.info("line %d", i)
        for _ in range(3):
            assert not await batcher.flush_now()
        await batcher.stop()
    assert (batcher.sent, batcher.dropped, batcher.pending()) == (0, 5, 0)
    warnings = [x["message"] for x in lines() if x["logger"] == "baseshift.logbatch"]
    assert warnings == ["could not write 2 log lines to down: no service"]
