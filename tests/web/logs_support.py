"""Helpers of the log store's web tests: lines stored directly, and waiting until what the
server captured (its own lines, ended attempts) has been written."""
from __future__ import annotations

from typing import Any

from baseshift.core.app.application import BaseShift
from baseshift.core.loglines import LogLine, line_of
from baseshift.plugins.logs.plugin import ATTEMPT_LINES, PROCESS_LINES

LOGS = "/api/v1/logs"


def a_line(message: str, at: float, **fields: Any) -> LogLine:
    return line_of({"message": message, **fields}, str(fields.pop("source", "server")), at=at,
                   traced=True)  # as an application that records traces stores it


async def store_lines(bs: BaseShift, *lines: LogLine) -> None:
    await bs.store.append_log_lines(lines)  # type: ignore[attr-defined]


async def captured(bs: BaseShift) -> None:
    """Wait until the ended attempts and the server's own lines are in the store."""
    attempts = bs.stash.get(ATTEMPT_LINES)
    if attempts is not None:
        await attempts.flush()
    batcher = bs.stash.get(PROCESS_LINES)
    if batcher is not None:
        assert await batcher.flush_now()
