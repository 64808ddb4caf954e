"""Server-sent events: a run's stored state changes, streamed as they happen."""
from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from enum import Enum
from typing import TYPE_CHECKING, Any

from starlette.responses import StreamingResponse

from baseshift.core.events import Event, RunStateChanged
from baseshift.core.hub import Lagged
from baseshift.core.report import status_json

if TYPE_CHECKING:
    from baseshift.core.app import BaseShift

KEEPALIVE_SECONDS = 15.0


def sse(event: str, data: Any) -> str:
    """One SSE message; `data` is JSON-encoded unless it is already a string."""
    text = data if isinstance(data, str) else json.dumps(data, default=_plain)
    lines = "".join(f"data: {line}\n" for line in text.splitlines() or [""])
    return f"event: {event}\n{lines}\n"


def event_json(event: Event) -> dict[str, Any]:
    out = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    out["type"] = type(event).__name__
    return out


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else str(value)


def run_event_stream(bs: BaseShift, run_id: str) -> StreamingResponse:
    """`snapshot` (the status shape) first, then one event per stored change, until the
    run finishes; a `snapshot` again whenever this client fell behind."""
    return StreamingResponse(_events(bs, run_id), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _events(bs: BaseShift, run_id: str) -> AsyncIterator[str]:
    async with bs.live.subscribe(run_id) as events:
        finished = await _snapshot(bs, run_id)
        yield finished[1]
        if finished[0]:
            yield sse("end", {"workflow_id": run_id})
            return
        while True:
            event = await events.next(KEEPALIVE_SECONDS)
            if event is None:
                yield ": keep-alive\n\n"
                continue
            if isinstance(event, Lagged):
                done, text = await _snapshot(bs, run_id)
                yield text
                if done:
                    break
                continue
            yield sse(type(event).__name__, event_json(event))
            if isinstance(event, RunStateChanged) and event.new.finished:
                break
    yield sse("end", {"workflow_id": run_id})


async def _snapshot(bs: BaseShift, run_id: str) -> tuple[bool, str]:
    snapshot = await bs.runs.snapshot(run_id, attempts=False)
    return snapshot.run.state.finished, sse("snapshot", status_json(snapshot))
