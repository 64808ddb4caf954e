"""The web UI: server-rendered pages (Jinja2, enhanced by htmx) for workflows, runs and
templates, with live run graphs over server-sent events. Every page reads without JavaScript.

Run pages live in `runs`; this module registers every route and holds the others.
"""
from __future__ import annotations

import difflib
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from baseshift.core.access import (
    RUNS_READ,
    RUNS_START,
    TEMPLATES_READ,
    WORKFLOWS_READ,
    WORKFLOWS_VALIDATE,
)
from baseshift.core.errors import InputError, NotFound
from baseshift.core.protocols import StateStore
from baseshift.core.records import RunQuery
from baseshift.core.states import RunState
from baseshift.plugins.templates.common import KnownTemplates, ListedTemplate
from baseshift.plugins.ui import runs
from baseshift.plugins.ui.insights import insights_page
from baseshift.web.access import (
    listing,
    public,
    public_app,
    requires,
    visible_workflows,
    workflow_named,
)
from baseshift.web.dag import layout_plan, render_svg
from baseshift.web.forms import field_of_error, form_fields, inputs_from_form, submitted_values
from baseshift.web.highlight import highlight
from baseshift.web.problems import HTML_ERRORS_KEY
from baseshift.web.render import builtin_static, render
from baseshift.web.requests import baseshift_of, read_form

if TYPE_CHECKING:
    from baseshift.core.appface import App
    from baseshift.core.plan import Plan

PAGE_SIZE = 25


LOGIN_PATH = "/ui/login"
ERROR_TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 405: "Method not allowed",
                409: "Conflict", 422: "Invalid input", 500: "Server error"}


def error_page(request: Request, status: int, detail: str,
               hint: str | None = None) -> Response:
    """An error on the dashboard or under `/ui/` (no such page or run, a GET on a form's
    address, a failure of the server) in the site's layout: people read these in a browser,
    not as problem+json. The problem handlers call it, so a 5xx is logged the same for a
    page as for the API."""
    if status == 401:  # not signed in (or the session ended): to the sign-in page
        target = f"{LOGIN_PATH}?{urlencode({'next': request.url.path})}"
        if "hx-request" in request.headers:
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)
    hint = hint or ("the menu above leads to every page" if status == 404 else
                    "go back to the page and use its form" if status == 405 else None)
    return render(request, "error.html",
                  {"title": ERROR_TITLES.get(status, "Error"), "message": detail, "hint": hint},
                  status=status)


@public("the site icon")
async def favicon(request: Request) -> Response:
    """Browsers ask for `/favicon.ico` on pages that name no icon (the API's JSON, say)."""
    return RedirectResponse(request.url_for("static", path="favicon.svg").path, status_code=301)


# --------------------------------------------------------------------------- dashboard


@requires(RUNS_READ, listing(RUNS_READ))
async def dashboard(request: Request) -> Response:
    store = baseshift_of(request).store
    visible = await visible_workflows(request, RUNS_READ)
    counts = await _counts(store, visible)
    failed = await store.query_runs(RunQuery(states=(RunState.FAILED,), workflows=visible,
                                             limit=10))
    recent = await store.query_runs(RunQuery(workflows=visible, limit=20))
    order = sorted(RunState, key=lambda s: (s is not RunState.FAILED, list(RunState).index(s)))
    return render(request, "dashboard.html", {
        "section": "dashboard", "counts": [(s, counts.get(s, 0)) for s in order],
        "counts_partial": None, "failed": failed.runs, "recent": recent.runs})


async def _counts(store: StateStore, visible: tuple[str, ...] | None) -> dict[RunState, int]:
    """Runs per state, of every workflow or of the `visible` ones."""
    if visible is None:
        return await store.count_runs_by_state()
    total = dict.fromkeys(RunState, 0)
    for name in visible:
        for state, n in (await store.count_runs_by_state(name)).items():
            total[state] += n
    return total


# --------------------------------------------------------------------------- workflows


@requires(WORKFLOWS_READ, listing(WORKFLOWS_READ))
async def workflows(request: Request) -> Response:
    catalog = baseshift_of(request).catalog
    visible = await visible_workflows(request, WORKFLOWS_READ)
    return render(request, "workflows.html", {
        "section": "workflows", "folder": catalog.folder,
        "entries": [e for e in catalog.entries() if visible is None or e.name in visible],
        "problems": catalog.problems if visible is None else []})


@requires(WORKFLOWS_READ, workflow_named("name"))
async def workflow(request: Request) -> Response:
    return workflow_page(request, request.path_params["name"])


def workflow_page(request: Request, name: str, *, values: dict[str, str] | None = None,
                  errors: dict[str, str] | None = None, form_error: str | None = None,
                  status: int = 200) -> Response:
    entry = baseshift_of(request).catalog.get(name)
    plan = entry.plan
    context: dict[str, Any] = {
        "section": "workflows", "entry": entry, "plan": plan,
        "lines": highlight(entry.source),
        "error_lines": {d.span.line for d in entry.diagnostics}, "form_error": form_error,
        "fields": form_fields(plan.inputs, values, errors) if plan else [],
        "schedules": schedules_of(plan) if plan else [],
        "dag": workflow_dag(plan, source_links=True) if plan else None,
    }
    return render(request, "workflow.html", context, block="run_form" if status != 200 else None,
                  status=status)


def workflow_dag(plan: Plan, prefix: str = "dag", *, source_links: bool = False) -> Any:
    """The plan's graph, each node showing the step type it uses; with `source_links` (the
    page lists the source) a node links to the line that declares its job."""
    jobs = (*plan.jobs, *plan.handlers)
    details = {j.name: f"uses {j.template.ref if j.template else j.uses}"
               + (" · for each" if j.fanout else "") for j in jobs}
    links = {j.name: f"#L{j.span.line}" for j in jobs if source_links and j.span.line}
    return render_svg(layout_plan(plan), title=f"Jobs of workflow {plan.name}",
                      details=details, prefix=prefix, links=links)


def schedules_of(plan: Plan) -> list[str]:
    """Readable lines for how runs of the plan start besides by hand: its `schedule`s, its
    webhook and its run limit (read with getattr: older plans have none of them)."""
    out = []
    for s in getattr(plan, "schedules", ()) or ():
        missed = getattr(s.missed, "value", s.missed)
        line = f"cron {s.cron} in time zone {s.timezone}; missed runs: {missed}"
        out.append(line + (f"; inputs {json.dumps(dict(s.inputs))}" if s.inputs else ""))
    webhook = getattr(plan, "webhook", None)
    if webhook is not None:
        out.append(f"webhook POST /api/v1/hooks/{plan.name} (secret {webhook.secret})")
    limit = getattr(plan, "run_limit", None)
    if limit is not None:
        out.append(f"at most {limit.limit} unfinished run(s)"
                   + (f" per {limit.to_json()['key']}" if limit.key is not None else "")
                   + f"; on conflict: {getattr(limit.policy, 'value', limit.policy)}")
    return out


@requires(RUNS_START, workflow_named("name"))
async def start_run(request: Request) -> Response:
    bs, name = baseshift_of(request), request.path_params["name"]
    plan = bs.catalog.plan(name)
    form = await read_form(request)
    try:
        run_id = await bs.runs.start(name, inputs_from_form(plan.inputs, form))
    except InputError as exc:
        field = field_of_error(exc.message)
        text = exc.message + (f" ({exc.hint})" if exc.hint else "")
        known = field in {i.name for i in plan.inputs}
        return workflow_page(request, name, values=submitted_values(plan.inputs, form),
                             errors={field: text} if known and field else {},
                             form_error=None if known else text, status=422)
    return RedirectResponse(request.url_for("web_ui:run", run_id=run_id).path, status_code=303)


# --------------------------------------------------------------------------- runs list


@requires(RUNS_READ, listing(RUNS_READ))
async def runs_list(request: Request) -> Response:
    bs, q = baseshift_of(request), request.query_params
    visible = await visible_workflows(request, RUNS_READ)
    workflow_name = q.get("workflow") or None
    state = (q.get("state") or "").upper() or None
    if state is not None and state not in RunState.__members__:
        raise InputError(f"state '{state}' is not one of {', '.join(RunState)}")
    page = await bs.store.query_runs(RunQuery(
        workflow=workflow_name, states=(RunState(state),) if state else None, limit=PAGE_SIZE,
        workflows=visible, cursor=q.get("cursor") or None))
    filters = {k: v for k, v in (("workflow", workflow_name), ("state", state)) if v}
    next_query = urlencode({**filters, "cursor": page.next_cursor}) if page.next_cursor else ""
    return render(request, "runs.html", {
        "section": "runs", "runs": page.runs, "workflow": workflow_name or "",
        "state": state or "", "states": list(RunState),
        "workflow_names": [e.name for e in bs.catalog.entries()
                           if visible is None or e.name in visible],
        "first_page": not q.get("cursor"), "query_first": urlencode(filters),
        "next_query": next_query}, block="run_list")


# --------------------------------------------------------------------------- templates


@requires(TEMPLATES_READ)
async def templates(request: Request) -> Response:
    bs = baseshift_of(request)
    by_name: dict[str, list[ListedTemplate]] = {}
    for listed in await KnownTemplates(bs).list():
        by_name.setdefault(listed.doc.name, []).append(listed)
    return render(request, "templates.html", {
        "section": "templates", "store": bs.templates, "templates": sorted(by_name.items())})


@requires(TEMPLATES_READ)
async def template(request: Request) -> Response:
    bs, name = baseshift_of(request), request.path_params["name"]
    listed = await KnownTemplates(bs).list(name)
    if not listed:
        raise NotFound(f"template {name} is not published or defined in a workflow file",
                       hint="every template is listed on the templates page")
    docs = [t.doc for t in listed]
    by_version = {d.version: d for d in docs}
    old = request.query_params.get("from") or (docs[-2] if len(docs) > 1 else docs[-1]).version
    new = request.query_params.get("to") or docs[-1].version
    diff = breaking = None
    if old in by_version and new in by_version:
        diff, breaking = template_diff(by_version[old], by_version[new])
    return render(request, "template.html", {
        "section": "templates", "name": name, "listed": listed, "docs": docs,
        "old_version": old, "new_version": new, "diff": diff, "breaking": breaking},
        block="diff")


def template_diff(old: Any, new: Any) -> tuple[list[str], list[str]]:
    """A unified diff of two template versions' documents, and the changes that break
    callers of the older one (as the store's publish check sees them)."""
    from baseshift.plugins.templates.schemacompat import breaking_changes

    def text(doc: Any) -> list[str]:
        data = doc.to_json()
        for key in ("version", "created_at"):
            data.pop(key, None)
        return json.dumps(data, indent=2, sort_keys=True).splitlines()

    lines = list(difflib.unified_diff(text(old), text(new), f"{old.ref}", f"{new.ref}",
                                      lineterm=""))
    reasons = breaking_changes(old.input_schema, old.output_schema, new.input_schema,
                               new.output_schema)
    return lines, list(reasons)


# --------------------------------------------------------------------------- validate


@requires(WORKFLOWS_VALIDATE)
async def validate(request: Request) -> Response:
    bs = baseshift_of(request)
    context: dict[str, Any] = {"section": "validate", "source": "", "checked": False}
    if request.method == "POST":
        source = str((await read_form(request)).get("source", ""))
        context.update(check_source(bs, source))
    return render(request, "validate.html", context, block="result")


def check_source(bs: App, source: str) -> dict[str, Any]:
    """What the validate page shows for a pasted workflow."""
    compiled = bs.catalog.validate(source, "pasted.bsw")
    plan = compiled.plan
    diagnostics = sorted(compiled.diagnostics, key=lambda d: d.sort_key())
    return {"source": source, "checked": True, "ok": compiled.ok, "plan": plan,
            "diagnostics": diagnostics, "lines": highlight(source),
            "error_lines": {d.span.line for d in diagnostics},
            "dag": workflow_dag(plan, prefix="dag-pasted") if plan else None}


# --------------------------------------------------------------------------- routes


def routes(bs: App) -> list[BaseRoute]:
    """The web UI's pages, its run event stream and its static files; errors on the
    dashboard and under `/ui/` become pages too."""
    pages = bs.stash.setdefault(HTML_ERRORS_KEY, {})
    pages["/"] = pages["/ui/"] = error_page
    return [
        Route("/", dashboard, name="web_ui:dashboard"),
        Route("/favicon.ico", favicon, name="web_ui:favicon"),
        Route("/ui/workflows", workflows, name="web_ui:workflows"),
        Route("/ui/workflows/{name}", workflow, name="web_ui:workflow"),
        Route("/ui/workflows/{name}/runs", start_run, methods=["POST"], name="web_ui:start_run"),
        Route("/ui/runs", runs_list, name="web_ui:runs"),
        *runs.routes(),
        Route("/ui/templates", templates, name="web_ui:templates"),
        Route("/ui/templates/{name}", template, name="web_ui:template"),
        Route("/ui/insights", insights_page, name="web_ui:insights"),
        Route("/ui/validate", validate, methods=["GET", "POST"], name="web_ui:validate"),
        Mount("/static", public_app(StaticFiles(directory=builtin_static()),
                                    "scripts, styles and icons of the pages"), name="static"),
    ]
