"""Run pages of the web UI: a run's live graph, timeline, jobs and logs, and its actions.

The page subscribes to `/ui/runs/{id}/stream` (htmx SSE extension); each stored change
re-renders the page's `header`, `graph` and `jobs` blocks on the server and sends them as
named events; a `done` event after the run finishes tells the browser to stop listening.
"""
from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from baseshift.core.access import (
    RUNS_APPROVE,
    RUNS_CANCEL,
    RUNS_READ,
    RUNS_RETRY,
    Permission,
)
from baseshift.core.errors import BaseShiftError, Conflict, InputError, NotFound
from baseshift.core.tracecontext import TRACE_URL, run_trace_id
from baseshift.plugins.ui.jobs import job_anchor, job_groups
from baseshift.web.access import check, requires, run_resource
from baseshift.web.dag import Layout, layout_plan, render_svg, summarise_jobs
from baseshift.web.render import is_htmx, render, render_text
from baseshift.web.requests import baseshift_of, read_form
from baseshift.web.sse import KEEPALIVE_SECONDS, sse
from baseshift.web.timeline import timeline

if TYPE_CHECKING:
    from baseshift.core.appface import App
    from baseshift.core.plan import Plan
    from baseshift.core.records import RunSnapshot

LIVE_BLOCKS = ("header", "graph", "jobs")


@dataclass(slots=True)
class RunView:
    """What the run page needs that does not change while the run goes on."""

    plan: Plan | None
    layout: Layout | None
    error: str | None = None
    trace: Trace | None = None


@dataclass(frozen=True, slots=True)
class Trace:
    """The run's trace when traces are recorded (its jobs' attempts are spans in it), and
    its page in the trace viewer when `[plugins.tracing] trace_url` is set."""

    id: str
    url: str | None


def run_trace(bs: App, run_id: str) -> Trace | None:
    template = bs.stash.get(TRACE_URL)
    if template is None:
        return None
    trace_id = run_trace_id(run_id)
    return Trace(trace_id, template.replace("{trace_id}", trace_id) if template else None)


def run_plan(bs: App, snapshot: RunSnapshot) -> tuple[Plan | None, str | None]:
    """The plan the run follows (as it was started), or why it cannot be had."""
    try:
        return bs.plan_for_run(snapshot.run, snapshot.jobs), None
    except BaseShiftError as exc:
        return None, exc.message


def run_view(bs: App, snapshot: RunSnapshot) -> RunView:
    """The run's plan and its graph layout."""
    plan, error = run_plan(bs, snapshot)
    return RunView(plan, None if plan is None else layout_plan(plan), error,
                   run_trace(bs, snapshot.run.id))


@dataclass(frozen=True, slots=True)
class Draft:
    """What a person typed into a waiting job's form and why it was refused: the form is
    shown again with the error next to the field and the text kept."""

    job: str
    action: str
    values: Mapping[str, str]
    error: str


def run_context(snapshot: RunSnapshot, view: RunView, message: str | None = None,
                draft: Draft | None = None) -> dict[str, Any]:
    now = time.time()
    dag = None
    groups = job_groups(snapshot, view.plan)
    if view.layout is not None:
        dag = render_svg(view.layout, title=f"Jobs of run {snapshot.run.id}",
                         summaries=summarise_jobs(snapshot.jobs),
                         links={g.row.record.name: "#" + job_anchor(g.row.record.key)
                                for g in groups})
    return {"section": "runs", "run": snapshot.run, "groups": groups,
            "waiting": any(g.row.waiting or g.needs_attention for g in groups),
            "dag": dag, "dag_error": view.error, "timeline": timeline(snapshot, now),
            "now": now, "message": message, "draft": draft, "trace": view.trace}


async def run_page(request: Request, run_id: str, *, message: str | None = None,
                   draft: Draft | None = None, status: int = 200) -> Response:
    bs = baseshift_of(request)
    snapshot = await bs.runs.snapshot(run_id)
    context = run_context(snapshot, run_view(bs, snapshot), message, draft)
    return render(request, "run.html", context, status=status)


@requires(RUNS_READ, run_resource)
async def run(request: Request) -> Response:
    return await run_page(request, request.path_params["run_id"])


# --------------------------------------------------------------------------- live updates


@requires(RUNS_READ, run_resource)
async def run_stream(request: Request) -> Response:
    """Server-sent events: the page's live blocks as HTML, after every stored change."""
    bs, run_id = baseshift_of(request), request.path_params["run_id"]
    await bs.runs.snapshot(run_id)  # NotFound before the stream starts
    return StreamingResponse(_fragments(request, bs, run_id), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _fragments(request: Request, bs: App, run_id: str) -> AsyncIterator[str]:
    async with bs.live.subscribe(run_id) as events:
        view: RunView | None = None
        while True:
            snapshot = await bs.runs.snapshot(run_id)
            view = view or run_view(bs, snapshot)
            context = run_context(snapshot, view)
            for block in LIVE_BLOCKS:
                yield sse(block, render_text(request, "run.html", context, block=block))
            if snapshot.run.state.finished:
                yield sse("done", "finished")
                return
            while await events.next(KEEPALIVE_SECONDS) is None:
                yield ": keep-alive\n\n"
            events.drain()  # one render for every change already waiting, not one each


# --------------------------------------------------------------------------- actions

Form = Mapping[str, str]
Operation = Callable[["App", str, Form, str], Awaitable[object]]
"""An action: the application, the run, the form, and the name of the actor acting."""


@requires(RUNS_READ, run_resource)
async def act(request: Request) -> Response:
    """Every form of the run page posts back to the run page, naming its action in `do`:
    success answers 303 See Other to the page; a refused action shows the page again at its
    own URL (so a reload never reaches a POST-only path) with the reason, and a refused
    answer to a waiting job keeps what was typed, with the error next to the field. An htmx
    request for a waiting job gets only that job's form back, with a status the page's htmx
    config swaps in (see `waiting_form`)."""
    bs, run_id = baseshift_of(request), request.path_params["run_id"]
    form = await read_form(request)
    action, job = form.get("do", ""), form.get("job", "")
    operation = ACTIONS.get(action)
    if operation is None:
        raise InputError(f"the run page has no action {action!r}",
                         hint=f"post one of: {', '.join(ACTIONS)}")
    actor = await check(request, ACTION_PERMISSIONS[action].name, await run_resource(request))
    try:
        await operation(bs, run_id, form, actor.person)
    except (Conflict, InputError) as exc:
        text = exc.message + (f" ({exc.hint})" if exc.hint else "")
        if action not in PERSON_ACTIONS:
            return await run_page(request, run_id, message=text, status=exc.status)
        draft = Draft(job, action, dict(form), text)
        if is_htmx(request):
            return await waiting_form(request, run_id, job, draft)
        return await run_page(request, run_id, draft=draft, status=exc.status)
    if is_htmx(request) and action in PERSON_ACTIONS:
        return await waiting_form(request, run_id, job, None)
    return RedirectResponse(request.url_for("web_ui:run", run_id=run_id).path, status_code=303)


async def waiting_form(request: Request, run_id: str, job: str,
                       draft: Draft | None) -> Response:
    """The forms of one waiting job (htmx swaps them in place), or a line saying what became
    of the job once it no longer waits.

    base.html's htmx config swaps 2xx and 422 only, so a refusal answers 422 while the job
    still waits (the error shows next to its field) and 200 once it no longer does (the line
    replaces the forms): the refusal's own status (409, say) would be thrown away."""
    bs = baseshift_of(request)
    snapshot = await bs.runs.snapshot(run_id)
    rows = [r for g in job_groups(snapshot, run_plan(bs, snapshot)[0])  # no graph layout
            for r in (g.row, *g.items) if r.record.key == job]
    if not rows:
        raise NotFound(f"run {run_id!r} has no job {job!r}")
    row = rows[0]
    context = {"run": snapshot.run, "row": row, "draft": draft}
    return HTMLResponse(render_text(request, "_parts/waiting.html", context, block="forms"),
                        status_code=422 if draft is not None and row.waiting else 200)


def _job(form: Form) -> str:
    job = form.get("job", "").strip()
    if not job:
        raise InputError("the form names no job", hint="send the job's key in the field 'job'")
    return job


async def _cancel(bs: App, run_id: str, form: Form, by: str) -> None:
    await bs.runs.cancel(run_id)


async def _retry(bs: App, run_id: str, form: Form, by: str) -> None:
    await bs.runs.retry(run_id)


async def _rerun_from(bs: App, run_id: str, form: Form, by: str) -> None:
    await bs.runs.rerun_from(run_id, _job(form))


async def _complete(bs: App, run_id: str, form: Form, by: str) -> None:
    text = form.get("output", "").strip()
    try:
        output = json.loads(text) if text else None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"the output is not JSON: {exc}",
                         hint='write JSON, e.g. {"approved": true}, or leave it empty') from None
    await bs.runs.complete_job(run_id, _job(form), output, by=by)


async def _fail(bs: App, run_id: str, form: Form, by: str) -> None:
    reason = form.get("error", "").strip() or "failed in the web UI"
    await bs.runs.fail_job(run_id, _job(form), reason, by=by)


ACTIONS: dict[str, Operation] = {"cancel": _cancel, "retry": _retry, "rerun": _rerun_from,
                                 "complete": _complete, "fail": _fail}
ACTION_PERMISSIONS: dict[str, Permission] = {
    "cancel": RUNS_CANCEL, "retry": RUNS_RETRY, "rerun": RUNS_RETRY, "complete": RUNS_APPROVE,
    "fail": RUNS_APPROVE}
PERSON_ACTIONS = frozenset({"complete", "fail"})
"""Answers to a job that waits for a person: their refusals keep the form's text."""


def routes() -> list[Route]:
    """The run routes (their errors are pages through the `/ui/` HTML errors hook)."""
    base = "/ui/runs/{run_id}"
    return [
        Route(base, run, methods=["GET"], name="web_ui:run"),
        Route(base, act, methods=["POST"], name="web_ui:run_action"),
        Route(base + "/stream", run_stream, name="web_ui:run_stream"),
    ]
