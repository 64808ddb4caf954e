"""Run pages of the web UI: a run's live graph, timeline, jobs and logs, and its actions.

The page subscribes to `/ui/runs/{id}/stream` (htmx SSE extension); each stored change
re-renders the page's `header`, `graph` and `jobs` blocks on the server and sends them as
named events; a `done` event after the run finishes tells the browser to stop listening.
"""
from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from baseshift.core.errors import BaseShiftError, Conflict, InputError
from baseshift.core.records import AttemptRecord, JobRecord, RunSnapshot
from baseshift.core.states import JobState
from baseshift.web.dag import Layout, layout_plan, render_svg, summarise_jobs
from baseshift.web.render import render, render_text
from baseshift.web.requests import baseshift_of, read_form
from baseshift.web.sse import KEEPALIVE_SECONDS, sse
from baseshift.web.timeline import timeline

if TYPE_CHECKING:
    from baseshift.core.app import BaseShift
    from baseshift.core.plan import Plan

View = Callable[[Request], Awaitable[Response]]
LIVE_BLOCKS = ("header", "graph", "jobs")


@dataclass(slots=True)
class JobRow:
    """One job (or fan-out item) as the run page lists it."""

    record: JobRecord
    attempts: list[AttemptRecord]
    uses: str
    waiting: bool = False
    prompt: str = ""
    can_rerun: bool = False
    dom_id: str = field(default="")


@dataclass(slots=True)
class RunView:
    """What the run page needs that does not change while the run goes on."""

    plan: Plan | None
    layout: Layout | None
    error: str | None = None


def run_view(bs: BaseShift, snapshot: RunSnapshot) -> RunView:
    """The plan the run follows (as it was started) and its graph layout."""
    try:
        plan = bs.plan_for_run(snapshot.run, snapshot.jobs)
    except BaseShiftError as exc:
        return RunView(None, None, exc.message)
    return RunView(plan, layout_plan(plan))


def run_context(snapshot: RunSnapshot, view: RunView, message: str | None = None
                ) -> dict[str, Any]:
    now = time.time()
    dag = None
    if view.layout is not None:
        dag = render_svg(view.layout, title=f"Jobs of run {snapshot.run.id}",
                         summaries=summarise_jobs(snapshot.jobs))
    return {"section": "runs", "run": snapshot.run, "rows": job_rows(snapshot, view.plan),
            "dag": dag, "dag_error": view.error, "timeline": timeline(snapshot, now),
            "now": now, "message": message}


def job_rows(snapshot: RunSnapshot, plan: Plan | None) -> list[JobRow]:
    """Every job record in plan order (fan-out items after their job), with its actions."""
    specs = {j.name: j for j in (*plan.jobs, *plan.handlers)} if plan else {}
    order = {name: i for i, name in enumerate(specs)}
    finished = snapshot.run.state.finished
    rows = []
    records = sorted(snapshot.jobs.values(),
                     key=lambda r: (order.get(r.name, len(order)), r.name,
                                    -1 if r.index is None else r.index))
    for record in records:
        spec = specs.get(record.name)
        uses = (spec.template.ref if spec and spec.template else spec.uses) if spec else ""
        waiting = uses == "manual" and record.state is JobState.RUNNING
        prompt = (record.inputs or {}).get("prompt") if waiting else None
        rows.append(JobRow(
            record, snapshot.attempts_of(record.key), f"uses {uses}" if uses else "",
            waiting=waiting, prompt=str(prompt or ""),
            can_rerun=finished and spec is not None and record.index is None
            and not record.handler,
            dom_id="".join(c if c.isalnum() or c in "_-" else "-" for c in record.key)))
    return rows


async def run_page(request: Request, run_id: str, *, message: str | None = None,
                   status: int = 200) -> Response:
    bs = baseshift_of(request)
    snapshot = await bs.runs.snapshot(run_id)
    context = run_context(snapshot, run_view(bs, snapshot), message)
    return render(request, "run.html", context, status=status)


async def run(request: Request) -> Response:
    return await run_page(request, request.path_params["run_id"])


# --------------------------------------------------------------------------- live updates


async def run_stream(request: Request) -> Response:
    """Server-sent events: the page's live blocks as HTML, after every stored change."""
    bs, run_id = baseshift_of(request), request.path_params["run_id"]
    await bs.runs.snapshot(run_id)  # NotFound before the stream starts
    return StreamingResponse(_fragments(request, bs, run_id), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _fragments(request: Request, bs: BaseShift, run_id: str) -> AsyncIterator[str]:
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


def _action(operation: Callable[[BaseShift, Request, str], Awaitable[object]]) -> View:
    """A POST that changes a run, then shows the run page again (303 See Other); a refused
    action shows the page with the reason and the error's status."""
    async def view(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        try:
            await operation(baseshift_of(request), request, run_id)
        except (Conflict, InputError) as exc:
            text = exc.message + (f" ({exc.hint})" if exc.hint else "")
            return await run_page(request, run_id, message=text, status=exc.status)
        target = request.url_for("web_ui:run", run_id=run_id).path
        return RedirectResponse(target, status_code=303)
    return view


async def _cancel(bs: BaseShift, request: Request, run_id: str) -> None:
    await bs.runs.cancel(run_id)


async def _retry(bs: BaseShift, request: Request, run_id: str) -> None:
    await bs.runs.retry(run_id)


async def _rerun_from(bs: BaseShift, request: Request, run_id: str) -> None:
    await bs.runs.rerun_from(run_id, request.path_params["job"])


async def _complete(bs: BaseShift, request: Request, run_id: str) -> None:
    text = str((await read_form(request)).get("output", "")).strip()
    try:
        output = json.loads(text) if text else None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"the output is not JSON: {exc}",
                         hint='write JSON, e.g. {"approved": true}, or leave it empty') from None
    await bs.runs.complete_job(run_id, request.path_params["job"], output)


async def _fail(bs: BaseShift, request: Request, run_id: str) -> None:
    reason = str((await read_form(request)).get("error", "")).strip() or "failed in the web UI"
    await bs.runs.fail_job(run_id, request.path_params["job"], reason)


def routes(wrap: Callable[[View], View]) -> list[Route]:
    """The run routes, each view wrapped (by the caller) to show errors as HTML pages."""
    base = "/ui/runs/{run_id}"
    return [
        Route(base, wrap(run), name="web_ui:run"),
        Route(base + "/stream", wrap(run_stream), name="web_ui:run_stream"),
        Route(base + "/cancel", wrap(_action(_cancel)), methods=["POST"], name="web_ui:cancel_run"),
        Route(base + "/retry", wrap(_action(_retry)), methods=["POST"], name="web_ui:retry_run"),
        Route(base + "/jobs/{job}/rerun", wrap(_action(_rerun_from)), methods=["POST"],
              name="web_ui:rerun_from"),
        Route(base + "/jobs/{job}/complete", wrap(_action(_complete)), methods=["POST"],
              name="web_ui:complete_job"),
        Route(base + "/jobs/{job}/fail", wrap(_action(_fail)), methods=["POST"],
              name="web_ui:fail_job"),
    ]
