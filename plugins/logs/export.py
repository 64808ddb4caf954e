"""`POST /api/v1/logs/export`: the lines a search matches, streamed page by page as NDJSON
(one JSON object per line, the API's shape) or CSV, up to `MAX_EXPORT` lines.

A CSV cell that a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, a
tab or a carriage return) is prefixed with `'`: a log line's text comes from anywhere, and
must not run when the file is opened (OWASP, "CSV injection")."""
from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace

from starlette.responses import StreamingResponse

from baseshift.core.capabilities import LogLines
from baseshift.core.loglines import LogLine, LogSearch
from baseshift.core.logquery import FIELDS

MAX_EXPORT = 100_000
"""The most lines one export holds."""
PAGE = 1000
FORMATS = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
COLUMNS = ("id", *FIELDS, "extra")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str) -> str:
    """`text` as a CSV cell no spreadsheet evaluates."""
    return "'" + text if text.startswith(_FORMULA) else text


def csv_row(values: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([safe_cell(v) for v in values])
    return out.getvalue()


def _csv_values(line: LogLine) -> list[str]:
    data = line.to_json()
    extra = {k: v for k, v in data.items() if k not in COLUMNS}
    values = ["" if data.get(c) is None else str(data[c]) for c in COLUMNS[:-1]]
    return [*values, json.dumps(extra, ensure_ascii=False) if extra else ""]


def _encoded(line: LogLine, fmt: str) -> str:
    if fmt == "csv":
        return csv_row(_csv_values(line))
    return json.dumps(line.to_json(), ensure_ascii=False) + "\n"


async def exported(store: LogLines, search: LogSearch, fmt: str) -> AsyncIterator[str]:
    """The export's text: a header row first for CSV, then page after page until the search
    or `search.limit` is exhausted."""
    if fmt == "csv":
        yield csv_row(list(COLUMNS))
    left = search.limit
    page_search = replace(search, limit=min(PAGE, left), count=False)
    while left > 0:
        page = await store.search_log_lines(page_search)
        for line in page.lines[:left]:
            yield _encoded(line, fmt)
        left -= len(page.lines)
        if len(page.lines) < page_search.limit:
            return
        last = page.lines[-1]
        page_search = replace(page_search, after=(last.timestamp, last.id),
                              limit=min(PAGE, left))


def export_response(store: LogLines, search: LogSearch, fmt: str) -> StreamingResponse:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    name = f"baseshift-logs-{stamp}.{fmt}"
    return StreamingResponse(exported(store, search, fmt), media_type=FORMATS[fmt],
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "Cache-Control": "no-store"})
