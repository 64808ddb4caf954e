"""Server-sent events: a run's stored state changes, streamed as they happen."""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import AsyncIterator
from enum import Enum
from typing import TYPE_CHECKING, Any

from starlette.responses import StreamingResponse

from baseshift.core.events import Event, RunStateChanged
from baseshift.core.hub import Lagged
from baseshift.core.json_text import replace_surrogates
from baseshift.core.report import status_json
from baseshift.core.states import JobState, RunState

from .schemas import JOB_STATUS, RUN_STATUS, STATUS, obj

if TYPE_CHECKING:
    from baseshift.core.appface import App

KEEPALIVE_SECONDS = 15.0


def sse(event: str, data: Any) -> str:
    """One SSE message; `data` is JSON-encoded unless it is already a string (whose lone
    surrogates become U+FFFD: the stream is UTF-8)."""
    text = replace_surrogates(data) if isinstance(data, str) else json.dumps(data, default=_plain)
    lines = "".join(f"data: {line}\n" for line in text.splitlines() or [""])
    return f"event: {event}\n{lines}\n"


def event_json(event: Event) -> dict[str, Any]:
    out = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    out["type"] = type(event).__name__
    return out


_JSON_TYPES: dict[Any, dict[str, Any]] = {
    str: {"type": "string"}, int: {"type": "integer"}, float: {"type": "number"},
    bool: {"type": "boolean"}, RunState: RUN_STATUS, JobState: JOB_STATUS}


def event_data_schema(cls: type[Event]) -> dict[str, Any]:
    """The JSON Schema of `event_json` for one event class, read from its dataclass fields,
    so a field or an event added to core/events.py is documented as it is sent."""
    hints = typing.get_type_hints(cls)
    props = {f.name: _json_type(hints[f.name]) for f in dataclasses.fields(cls)}
    props["type"] = {"const": cls.__name__}
    return obj(props, tuple(props))


def _json_type(hint: Any) -> dict[str, Any]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return {"anyOf": [_json_type(arg) if arg is not type(None) else {"type": "null"}
                          for arg in typing.get_args(hint)]}
    return _JSON_TYPES.get(hint, {})


def _event_classes(cls: type[Event] = Event) -> dict[str, type[Event]]:
    """Every event class by name (a slotted dataclass leaves its first draft among the
    subclasses too: the name keeps one)."""
    found: dict[str, type[Event]] = {}
    for sub in cls.__subclasses__():
        found[sub.__name__] = sub
        found.update(_event_classes(sub))
    return found


def _message(event: str, data: dict[str, Any]) -> dict[str, Any]:
    """One message as a client parses it: the event name, and data that is this JSON."""
    return obj({"event": {"const": event},
                "data": {"type": "string", "contentMediaType": "application/json",
                         "contentSchema": data}}, ("event", "data"))


END = obj({"workflow_id": {"type": "string"}}, ("workflow_id",))
EVENT_MESSAGE: dict[str, Any] = {"oneOf": [
    _message("snapshot", STATUS), _message("end", END),
    *(_message(name, event_data_schema(cls)) for name, cls in _event_classes().items())]}
"""Each message of a run's stream (OpenAPI 3.1: the `schema` of `text/event-stream` is one
event): `snapshot` (the status document), the change events, then `end`."""


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else str(value)


def run_event_stream(bs: App, run_id: str) -> StreamingResponse:
    """`snapshot` (the status shape) first, then one event per stored change, until the
    run finishes; a `snapshot` again whenever this client fell behind."""
    return StreamingResponse(_events(bs, run_id), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _events(bs: App, run_id: str) -> AsyncIterator[str]:
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


async def _snapshot(bs: App, run_id: str) -> tuple[bool, str]:
    snapshot = await bs.runs.snapshot(run_id, attempts=False)
    return snapshot.run.state.finished, sse("snapshot", status_json(snapshot))
