"""Stored log lines: the record a log store keeps (`LogLine`), what a search asks of it
(`LogSearch`) and what it answers (`LogPage`).

A line holds the query fields of core/logquery.py as text (`fields`) and whatever else its
JSON line carried (`extra`). `select_lines` is the meaning of a search over lines in memory:
the memory store uses it, and the SQL stores must answer the same lines in the same order.

Text is made storable on the way in (`line_of`), the same for every store: lone surrogates
and NUL characters become U+FFFD (PostgreSQL's text holds neither) and each field is cut at
`MAX_TEXT` characters, so that a runaway line cannot fill the store.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .json_text import replace_surrogates
from .logquery import FIELDS, QUERY_FIELDS, LogQuery
from .tracecontext import run_trace_id

MAX_TEXT = 32_768
"""The longest a field's text is kept (characters)."""
ALIASES = {"workflow": "workflow_id", "worker_id": "worker"}
"""Names the log context binds (core/logcontext.py) for fields a stored line calls otherwise."""
SOURCES = ("server", "worker", "attempt")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class LogLine:
    """One stored line: when (epoch seconds), its query fields as text (a field missing is
    absent), the rest of its JSON fields, and the id the store gave it (0 before)."""

    timestamp: float
    fields: Mapping[str, str]
    extra: Mapping[str, Any] = field(default_factory=dict)
    id: int = 0

    def to_json(self) -> dict[str, Any]:
        """The line as the API answers it: `id`, every field of FIELDS (null when missing;
        `attempt` a number), the time in ISO 8601 UTC, then the other fields."""
        out: dict[str, Any] = {"id": self.id}
        for name in FIELDS:
            out[name] = iso_time(self.timestamp) if name == "timestamp" \
                else self.fields.get(name)
        attempt = out["attempt"]
        if attempt is not None and attempt.isascii() and attempt.isdecimal():  # as in JSON
            out["attempt"] = int(attempt)
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out


@dataclass(frozen=True, slots=True)
class LogSearch:
    """Which lines to answer: those `query` matches, stored at `since` or later and at
    `until` or earlier, of the workflows `workflows` only when given (a line of no workflow,
    such as the server's own, is then left out), at most `limit` of them.

    Ordered by time (`descending`: newest first), the id breaking ties; `after` is the
    `(timestamp, id)` of the last line of the previous page. `newer_than` instead follows the
    store: the lines stored after the one with that id, in the order they were stored
    (`descending`: the last stored first)."""

    query: LogQuery = field(default_factory=LogQuery)
    since: float | None = None
    until: float | None = None
    limit: int = 100
    descending: bool = True
    after: tuple[float, int] | None = None
    newer_than: int | None = None
    workflows: tuple[str, ...] | None = None
    count: bool = True
    """False: the answer's `total` is 0, not counted (paging through an export, following)."""


@dataclass(frozen=True, slots=True)
class LogPage:
    """`total`: how many lines the search matches in all (pages apart); `lines`: this page."""

    total: int
    lines: list[LogLine]


def iso_time(seconds: float) -> str:
    """`2026-12-06T04:00:00.123456Z`: epoch seconds in ISO 8601 UTC."""
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def storable(text: str) -> str:
    """`text` as every store can keep it (see the module docstring)."""
    text = replace_surrogates(text[:MAX_TEXT])
    return _UNSTORABLE.sub("\ufffd", text) if "\x00" in text else text


def line_of(raw: Mapping[str, Any], source: str, *, at: float | None = None,
            traced: bool = False) -> LogLine:
    """The line to store for the JSON fields of a log line (core/app/logrender.py
    `record_fields`): the time from its `timestamp` (ISO 8601 or epoch seconds; `at`, else
    now, when it has none), the level lower case, the context's names mapped (`workflow`
    is `workflow_id`). With `traced` (the application records traces), a line about a run
    that names no trace gets its run's trace id, derived from its run id; without, none:
    that trace exists in no trace viewer."""
    values = dict(raw)
    for alias, name in ALIASES.items():
        if alias in values:
            found = values.pop(alias)
            values.setdefault(name, found)
    moment = _seconds(values.pop("timestamp", None), at)
    values.setdefault("source", source)
    values.setdefault("message", "")
    fields = {k: storable(str(values[k])) for k in QUERY_FIELDS
              if values.get(k) is not None}
    fields["level"] = fields.get("level", "info").lower()
    if traced and "run_id" in fields and "trace_id" not in fields:
        fields["trace_id"] = run_trace_id(fields["run_id"])
    extra = {k: v for k, v in values.items() if k not in FIELDS and k != "id"}
    return LogLine(moment, fields, extra)


def _seconds(value: Any, at: float | None) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if at is not None:
        return at
    return datetime.now(UTC).timestamp()


def _in_range(line: LogLine, search: LogSearch) -> bool:
    if search.since is not None and line.timestamp < search.since:
        return False
    if search.until is not None and line.timestamp > search.until:
        return False
    if search.workflows is not None and line.fields.get("workflow_id") not in search.workflows:
        return False
    return search.newer_than is None or line.id > search.newer_than


def select_lines(lines: Iterable[LogLine], search: LogSearch) -> LogPage:
    """The page `search` answers from `lines` (see `LogSearch`): the reference meaning."""
    found = [line for line in lines
             if _in_range(line, search) and search.query.matches(line.fields)]
    total = len(found) if search.count else 0
    if search.newer_than is not None:
        found.sort(key=lambda line: line.id, reverse=search.descending)
        return LogPage(total, found[:search.limit])
    found.sort(key=lambda line: (line.timestamp, line.id), reverse=search.descending)
    page = found
    if search.after is not None:
        after = search.after
        page = [line for line in found
                if ((line.timestamp, line.id) < after if search.descending
                    else (line.timestamp, line.id) > after)]
    return LogPage(total, page[:search.limit])
