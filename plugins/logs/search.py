"""What a request asks of the log store: its query, time range, order, page size and cursor
(from the query string or a JSON body) as a `LogSearch`, limited to the workflows whose
lines the actor may read, and the store that answers it."""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from starlette.requests import Request

from baseshift.core.access import LOGS_READ
from baseshift.core.capabilities import LogLines
from baseshift.core.errors import BadRequest, InputError, NotFound
from baseshift.core.loglines import LogLine, LogSearch
from baseshift.core.logquery import LogQuery
from baseshift.dsl.logquery import parse_log_query
from baseshift.web.access import visible_workflows
from baseshift.web.limits import read_time
from baseshift.web.requests import baseshift_of

MAX_PAGE = 1000
DEFAULT_PAGE = 100
MAX_QUERY = 4000
"""The longest query text read (characters)."""
SORTS = ("asc", "desc")
CURSOR_PATTERN = r"(-?[0-9]{1,17}(?:\.[0-9]{1,20})?(?:e[+-]?[0-9]{1,3})?):([0-9]{1,19})"
"""A cursor: the time (Python's repr of a float) and id of the last line of a page."""
_CURSOR = re.compile(CURSOR_PATTERN)


def log_store(request: Request) -> LogLines:
    """The state store as a log store; NotFound (a problem) when it keeps no log lines."""
    store = baseshift_of(request).store
    if not isinstance(store, LogLines):
        raise NotFound(f"the state store '{getattr(store, 'name', '?')}' keeps no log lines",
                       hint="use the sqlite, postgres or memory state store")
    return store


def parse_query(text: object, name: str = "query") -> LogQuery:
    """The parsed query (empty text: every line); LogQueryError (400) with its diagnostics,
    which the API's problem lists under `errors`."""
    if text is None or text == "":
        return LogQuery()
    if not isinstance(text, str):
        raise InputError(f"'{name}' must be a string (a log query), got "
                         f"{type(text).__name__}", details={"field": name})
    if len(text) > MAX_QUERY:
        raise BadRequest(f"'{name}' is longer than {MAX_QUERY} characters",
                         details={"field": name})
    return parse_log_query(text)


def cursor_text(line: LogLine) -> str:
    """The cursor of the page after `line`: opaque to clients, `time:id` here."""
    return f"{line.timestamp!r}:{line.id}"


def read_cursor(raw: object) -> tuple[float, int] | None:
    if raw is None or raw == "":
        return None
    m = _CURSOR.fullmatch(raw) if isinstance(raw, str) else None
    if m is None:
        raise BadRequest("'cursor' is not a cursor of this API",
                         hint="pass the next_cursor of the previous page unchanged, or omit it",
                         details={"field": "cursor"})
    return float(m[1]), int(m[2])


def read_limit(raw: object, name: str = "limit", most: int = MAX_PAGE,
               default: int = DEFAULT_PAGE) -> int:
    if raw is None or raw == "":
        return default
    if isinstance(raw, str) and raw.isdigit() and len(raw) < 10:
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= most:
        raise BadRequest(f"'{name}' must be a whole number from 1 to {most}, got {raw!r}",
                         details={"field": name})
    return raw


def read_sort(raw: object) -> bool:
    """Whether newest first: `desc` (the default) or `asc`, alone or as the body's
    `{"timestamp": "asc"|"desc"}`."""
    if isinstance(raw, dict):
        if set(raw) - {"timestamp"}:
            raise BadRequest("'sort' sorts by timestamp only, like {\"timestamp\": \"desc\"}",
                             details={"field": "sort"})
        if not raw:
            return True
        raw = raw["timestamp"]
    elif raw is None or raw == "":
        return True
    if raw not in SORTS:
        raise BadRequest(f"'sort' must be asc or desc, got {raw!r}", details={"field": "sort"})
    return raw == "desc"


def search_of(values: dict[str, Any], *, field: bool, most: int = MAX_PAGE,
              default: int = DEFAULT_PAGE) -> LogSearch:
    """The search of a JSON body (`field`) or of query parameters; the query text is under
    `query` in a body, `q` in a query string."""
    text = values.get("query" if field else "q")
    since, until = values.get("from"), values.get("to")
    return LogSearch(
        query=parse_query(text, "query" if field else "q"),
        since=None if since in (None, "") else read_time(since, "from", field=field),
        until=None if until in (None, "") else read_time(until, "to", field=field),
        limit=read_limit(values.get("limit"), most=most, default=default),
        descending=read_sort(values.get("sort")),
        after=read_cursor(values.get("cursor")))


async def scoped(request: Request, search: LogSearch) -> LogSearch:
    """`search` limited to the lines the actor may read: every line with `logs:read` on
    every workflow, else only the lines of the workflows its grants reach (never the
    server's own lines, which belong to no workflow)."""
    return replace(search, workflows=await visible_workflows(request, LOGS_READ))
