"""The runs API: start, list, inspect, cancel, retry and re-run runs; finish waiting jobs;
stream a run's events. Runs are `workflows` in URLs, as the seed plan names them."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from baseshift.core import audit
from baseshift.core.access import (
    RUNS_APPROVE,
    RUNS_CANCEL,
    RUNS_READ,
    RUNS_RETRY,
    RUNS_START,
    Resource,
)
from baseshift.core.errors import BadRequest, InputError, NotFound
from baseshift.core.records import MAX_PAGE, RunCursor, RunQuery
from baseshift.core.report import job_json, run_json, snapshot_json, status_json
from baseshift.core.secretvalues import revealed
from baseshift.core.states import JobState, RunState
from baseshift.web.access import (
    actor_of,
    check,
    listing,
    requires,
    run_resource,
    visible_workflows,
)
from baseshift.web.limits import FlagParam, IntParam, Text, TextParam, TimeParam
from baseshift.web.openapi import operation
from baseshift.web.requests import baseshift_of, json_object, only_fields, read_json
from baseshift.web.responses import JSONResponse
from baseshift.web.schemas import (
    ACCEPTED,
    COMPLETE_BODY,
    FAIL_BODY,
    JOB,
    PUT_JOB_BODY,
    PUT_JOB_STATUSES,
    RERUN_BODY,
    RUN,
    RUN_PAGE,
    RUN_STATUS,
    START_BODY,
    STARTED,
    STATUS,
    run_response,
)
from baseshift.web.sse import EVENT_MESSAGE, run_event_stream

from .permissions import SECRET_READ

TAGS = ["runs"]


async def _body_workflow(request: Request) -> Resource:
    """The workflow a start names (the body is read again, from Starlette's cache, by the
    view, which reports a malformed one)."""
    try:
        body = await read_json(request)
    except BadRequest:
        body = None
    name = body.get("workflow") if isinstance(body, dict) else None
    return Resource("workflow", name, name) if isinstance(name, str) else Resource("workflow")


@requires(RUNS_START, _body_workflow)
@operation("Start a run of a loaded workflow", tags=TAGS, request=START_BODY, response=STARTED,
           status=201, errors=(400, 404, 409, 422))
async def start_run(request: Request) -> Response:
    body = json_object(await read_json(request), "body")
    only_fields(body, {"workflow", "inputs"})
    name = body.get("workflow")
    if not isinstance(name, str) or not name:
        raise InputError("field 'workflow' must name a loaded workflow",
                         details={"field": "workflow"})
    inputs = json_object(body.get("inputs"), "inputs")
    return run_response(await baseshift_of(request).runs.start(name, inputs), 201)


WORKFLOW = TextParam("workflow")
SINCE, UNTIL = TimeParam("since"), TimeParam("until")
LIMIT = IntParam("limit", 1, MAX_PAGE, default=50)
CURSOR = TextParam("cursor", Text(RunCursor.PATTERN, hint="pass the next_cursor of the "
                                  "previous page unchanged, or omit it"))
LOGS = FlagParam("logs")


@requires(RUNS_READ, listing(RUNS_READ))
@operation("List runs, newest first, with filters and cursor pagination (only of the "
           "workflows the caller may read)", tags=TAGS,
           response=RUN_PAGE, errors=(400,), params=(WORKFLOW, SINCE, UNTIL, LIMIT, CURSOR),
           query={"state": {"type": "array", "items": RUN_STATUS}})
async def list_runs(request: Request) -> Response:
    states = tuple(_state(s) for s in request.query_params.getlist("state")) or None
    query = RunQuery(workflow=WORKFLOW.read(request), states=states,
                     workflows=await visible_workflows(request, RUNS_READ),
                     created_after=SINCE.read(request), created_before=UNTIL.read(request),
                     limit=LIMIT.read(request), cursor=CURSOR.read(request))
    page = await baseshift_of(request).store.query_runs(query)
    return JSONResponse({"runs": [run_json(r) for r in page.runs],
                         "next_cursor": page.next_cursor})


def _state(text: str) -> RunState:
    """A run status word, exactly as every answer writes it (the document's enum)."""
    try:
        return RunState(text)
    except ValueError:
        raise BadRequest(f"query parameter 'state' has value {text!r}; use one of: "
                         f"{', '.join(s.value for s in RunState)}",
                         hint="the status words are upper case, as runs report them",
                         details={"parameter": "state"}) from None


REVEAL = TextParam("reveal", Text(r"secrets", hint="reveal=secrets shows the clear values of "
                                  "secret inputs and outputs (permission secret:read)"))


@requires(RUNS_READ, run_resource)
@operation("A run with its jobs and attempts (logs with ?logs=true); secret values are *** "
           "unless ?reveal=secrets, which needs secret:read and is audited", tags=TAGS,
           response=RUN, errors=(400, 403, 404, 422), params=(LOGS, REVEAL))
async def get_run(request: Request) -> Response:
    logs, reveal = LOGS.read(request), REVEAL.read(request) is not None
    bs = baseshift_of(request)
    if reveal:
        await check(request, SECRET_READ.name, await run_resource(request))
    snapshot = await bs.runs.snapshot(request.path_params["run_id"])
    if not reveal:
        return JSONResponse(snapshot_json(snapshot, logs=logs))
    document = await revealed(bs.hooks.sealer, snapshot_json(snapshot, logs=logs, sealed=True))
    await audit.record(bs.store, [audit.entry("secret.read", f"run:{snapshot.run.id}",
                                              workflow=snapshot.run.workflow)])
    return JSONResponse(document)


@requires(RUNS_READ, run_resource)
@operation("A run's progress: current, completed and pending jobs", tags=TAGS,
           response=STATUS, errors=(404,))
async def run_status(request: Request) -> Response:
    runs = baseshift_of(request).runs
    snapshot = await runs.snapshot(request.path_params["run_id"], attempts=False)
    return JSONResponse(status_json(snapshot))


@requires(RUNS_CANCEL, run_resource)
@operation("Cancel an unfinished run", tags=TAGS, response=RUN, errors=(404, 409))
async def cancel_run(request: Request) -> Response:
    bs = baseshift_of(request)
    run = await bs.runs.cancel(request.path_params["run_id"])
    return JSONResponse(run_json((await bs.runs.snapshot(run.id)).run))


@requires(RUNS_RETRY, run_resource)
@operation("Retry a failed or cancelled run: its unfinished jobs run again", tags=TAGS,
           response=STARTED, status=202, errors=(404, 409))
async def retry_run(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    await baseshift_of(request).runs.retry(run_id)
    return run_response(run_id, 202)


@requires(RUNS_RETRY, run_resource)
@operation("Re-run a finished run from a job: it and everything downstream run again",
           tags=TAGS, request=RERUN_BODY, response=STARTED, status=202,
           errors=(404, 409, 422))
async def rerun_run(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    body = json_object(await read_json(request), "body")
    only_fields(body, {"from_job"})
    job = body.get("from_job")
    if not isinstance(job, str) or not job:
        raise InputError("field 'from_job' must name a job of the run",
                         details={"field": "from_job"})
    await baseshift_of(request).runs.rerun_from(run_id, job)
    return run_response(run_id, 202)


@requires(RUNS_READ, run_resource)
@operation("Server-sent events of a run: a snapshot, then every state change",
           tags=TAGS, errors=(404,), content_type="text/event-stream",
           response=EVENT_MESSAGE)
async def run_events(request: Request) -> Response:
    bs = baseshift_of(request)
    snapshot = await bs.runs.snapshot(request.path_params["run_id"])
    return run_event_stream(bs, snapshot.run.id)


@requires(RUNS_READ, run_resource)
@operation("The jobs of a run, with their attempts", tags=TAGS,
           response={"type": "array", "items": JOB}, errors=(404,))
async def list_jobs(request: Request) -> Response:
    snapshot = await baseshift_of(request).runs.snapshot(request.path_params["run_id"])
    return JSONResponse(snapshot_json(snapshot, logs=False)["jobs"])


@requires(RUNS_READ, run_resource)
@operation("One job of a run: inputs, output, error, attempts with logs", tags=TAGS,
           response=JOB, errors=(404,))
async def get_job(request: Request) -> Response:
    run_id, key = request.path_params["run_id"], request.path_params["job_id"]
    snapshot = await baseshift_of(request).runs.snapshot(run_id)
    job = snapshot.jobs.get(key)
    if job is None:
        raise NotFound(f"run '{run_id}' has no job '{key}'")
    attempts = sorted(snapshot.attempts_of(key), key=lambda a: a.number)
    return JSONResponse(job_json(job, attempts))


@requires(RUNS_APPROVE, run_resource)
@operation("Complete a job that waits for an outside call, with its output", tags=TAGS,
           request=COMPLETE_BODY, response=ACCEPTED, status=202, errors=(404, 409, 422),
           body_required=False)
async def complete_job(request: Request) -> Response:
    body = json_object(await read_json(request, default={}), "body")
    only_fields(body, {"output"})
    return await _deliver(request, JobState.SUCCEEDED, body.get("output"), None)


@requires(RUNS_APPROVE, run_resource)
@operation("Fail a job that waits for an outside call", tags=TAGS, request=FAIL_BODY,
           response=ACCEPTED, status=202, errors=(404, 409, 422), body_required=False)
async def fail_job(request: Request) -> Response:
    body = json_object(await read_json(request, default={}), "body")
    only_fields(body, {"error"})
    return await _deliver(request, JobState.FAILED, None, _error_text(body))


@requires(RUNS_APPROVE, run_resource)
@operation("Set a waiting job's status: SUCCEEDED or FAILED (the seed's completed/failed too)",
           tags=TAGS, request=PUT_JOB_BODY, response=ACCEPTED, status=202,
           errors=(404, 409, 422))
async def put_job(request: Request) -> Response:
    body = json_object(await read_json(request), "body")
    only_fields(body, {"status", "output", "error"})
    raw = body.get("status")
    status = PUT_JOB_STATUSES.get(raw) if isinstance(raw, str) else None
    if status is None:
        raise InputError(f"field 'status' must be one of: {', '.join(PUT_JOB_STATUSES)}",
                         details={"field": "status"})
    error = _error_text(body) if status is JobState.FAILED else None
    return await _deliver(request, status, body.get("output"), error)


def _error_text(body: dict[str, Any]) -> str:
    error = body.get("error", "failed by an outside call")
    if not isinstance(error, str) or not error:
        raise InputError("field 'error' must be a non-empty string", details={"field": "error"})
    return error


async def _deliver(request: Request, status: JobState, output: Any,
                   error: str | None) -> Response:
    runs, by = baseshift_of(request).runs, actor_of(request).person
    run_id, key = request.path_params["run_id"], request.path_params["job_id"]
    if status is JobState.SUCCEEDED:
        await runs.complete_job(run_id, key, output, by=by)
    else:
        await runs.fail_job(run_id, key, error or "failed", by=by)
    return JSONResponse({"workflow_id": run_id, "job": key, "accepted": status.value},
                        status_code=202)


RUN_PATH = "/api/v1/workflows/{run_id}"
JOB_PATH = RUN_PATH + "/jobs/{job_id}"


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/workflows", start_run, methods=["POST"], name="api_runs:start"),
        Route("/api/v1/workflows", list_runs, methods=["GET"], name="api_runs:list"),
        Route(RUN_PATH, get_run, methods=["GET"], name="api_runs:get"),
        Route(RUN_PATH + "/status", run_status, methods=["GET"], name="api_runs:status"),
        Route(RUN_PATH + "/cancel", cancel_run, methods=["POST"], name="api_runs:cancel"),
        Route(RUN_PATH + "/retry", retry_run, methods=["POST"], name="api_runs:retry"),
        Route(RUN_PATH + "/rerun", rerun_run, methods=["POST"], name="api_runs:rerun"),
        Route(RUN_PATH + "/events", run_events, methods=["GET"], name="api_runs:events"),
        Route(RUN_PATH + "/jobs", list_jobs, methods=["GET"], name="api_runs:jobs"),
        Route(JOB_PATH, get_job, methods=["GET"], name="api_runs:job"),
        Route(JOB_PATH, put_job, methods=["PUT"], name="api_runs:put-job"),
        Route(JOB_PATH + "/complete", complete_job, methods=["POST"], name="api_runs:complete"),
        Route(JOB_PATH + "/fail", fail_job, methods=["POST"], name="api_runs:fail"),
        # the seed plan's paths, without the /api/v1 prefix
        Route("/workflows", start_run, methods=["POST"], name="api_runs:seed-start"),
        Route("/workflows/{run_id}", get_run, methods=["GET"], name="api_runs:seed-get"),
        Route("/workflows/{run_id}/jobs/{job_id}", put_job, methods=["PUT"],
              name="api_runs:seed-put-job"),
    ]
