"""The UI's log search page (`/ui/logs`): a query box and a time range, the matching lines
newest first, the query's terms marked in their text, and a query that does not parse
shown with where (line:col) and why."""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import Response

from baseshift.core.errors import LogQueryError
from baseshift.core.loglines import LogLine, iso_time
from baseshift.core.logquery import LogQuery, Term, term_spans
from baseshift.web.render import render

from .search import log_store, scoped, search_of

TEMPLATE = "logs/logs.html"
LINKED_RUN = re.compile(r"[A-Za-z0-9._~-]{1,200}")
"""A run id the page links to: a line's fields come from anywhere (a step may log its own
`run_id`), and a path separator, a `?` or an empty id would break the link or the page."""
FILTERS = ("q", "from", "to", "limit")


def marked(text: str, terms: Iterable[Term]) -> Markup:
    """`text` escaped, with the parts `terms` match wrapped in `<mark>`: the matches are found
    in the raw text, then every piece is escaped on its own, so a mark never splits an
    entity and nothing of `text` is ever markup."""
    spans: list[tuple[int, int]] = []
    for term in terms:
        spans += [(start, end) for start, end in term_spans(term, text) if end > start]
    out, at = [], 0
    for start, end in _merged(spans):
        out += [escape(text[at:start]), Markup("<mark>"), escape(text[start:end]),
                Markup("</mark>")]
        at = end
    out.append(escape(text[at:]))
    return Markup("").join(out)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _row(line: LogLine, query: LogQuery) -> dict[str, object]:
    terms = query.highlights()
    run_id = line.fields.get("run_id", "")
    return {"line": line, "time": iso_time(line.timestamp),
            "run_link": run_id if LINKED_RUN.fullmatch(run_id) else None,
            "message": marked(line.fields.get("message", ""),
                              [t for t in terms if t.target == "message"]),
            "error": marked(line.fields.get("error", ""),
                            [t for t in terms if t.target == "error"])
            if "error" in line.fields else None}


async def logs_page(request: Request) -> Response:
    """The page, or only its results for htmx; a bad query answers 422 with its errors."""
    values: Mapping[str, str] = request.query_params
    filters = {k: values.get(k, "") for k in FILTERS}
    context: dict[str, object] = {"section": "logs", "filters": filters, "rows": [],
                                  "total": 0, "errors": [], "problem": None}
    try:
        search = await scoped(request, search_of({k: v for k, v in filters.items() if v},
                                                 field=False))
    except LogQueryError as exc:
        context.update(problem=exc.message, errors=[d.to_json() for d in exc.diagnostics])
        return render(request, TEMPLATE, context, block="results", status=422)
    page = await log_store(request).search_log_lines(search)
    context.update(total=page.total, rows=[_row(x, search.query) for x in page.lines])
    return render(request, TEMPLATE, context, block="results")
