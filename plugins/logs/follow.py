"""`GET /api/v1/logs/follow`: the lines stored from now on that a query matches, as
server-sent events (`event: log`, the line as JSON, its id as the event id), fleet-wide:
it reads the store after the last id it saw, so lines stored by every server and worker
sharing the store arrive. A comment every `KEEPALIVE_SECONDS` without lines keeps proxies
from closing the stream; it ends when the client goes (or after `limit` lines, if given).

Each poll reads every new line once, unfiltered, and applies the query and the actor's
workflow scope here (`LogQuery.matches`, the stores' meaning): a query that matches
nothing does not make the store scan the same lines again at every poll.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from starlette.responses import StreamingResponse

from baseshift.core.capabilities import LogLines
from baseshift.core.loglines import LogLine, LogSearch
from baseshift.web.sse import sse

POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0
BATCH = 500


def _wanted(line: LogLine, search: LogSearch) -> bool:
    if search.workflows is not None and line.fields.get("workflow_id") not in search.workflows:
        return False
    return search.query.matches(line.fields)


async def newest_id(store: LogLines) -> int:
    """The id of the line stored last (0: none yet), where following starts."""
    page = await store.search_log_lines(LogSearch(limit=1, count=False, newer_than=0))
    return page.lines[0].id if page.lines else 0


async def followed(store: LogLines, search: LogSearch, after: int | None,
                   most: int | None, poll: float = POLL_SECONDS) -> AsyncIterator[str]:
    last = await newest_id(store) if after is None else after
    sent, quiet_since = 0, time.monotonic()
    yield ": following\n\n"
    while most is None or sent < most:
        page = await store.search_log_lines(LogSearch(newer_than=last, limit=BATCH,
                                                      count=False, descending=False))
        for line in page.lines:
            last = line.id
            if _wanted(line, search) and (most is None or sent < most):
                sent += 1
                quiet_since = time.monotonic()
                yield f"id: {line.id}\n" + sse("log", line.to_json())
        if len(page.lines) == BATCH:
            continue
        if time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        await asyncio.sleep(poll)


def follow_response(store: LogLines, search: LogSearch, after: int | None,
                    most: int | None) -> StreamingResponse:
    return StreamingResponse(followed(store, search, after, most),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
