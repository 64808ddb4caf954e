"""The analytics API: a run's or a workflow's performance, job success rates and job durations,
answered by the state store's aggregates (SQL in the SQLite store).

Durations are seconds; times are ISO 8601 UTC with milliseconds (`2026-11-28T10:00:00.000Z`).
Time filters `since`/`until` select runs by creation time (`since <= created_at < until`) and
take an RFC 3339 date-time with its offset or epoch seconds.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from baseshift.core.access import ANALYTICS_READ
from baseshift.core.errors import NotFound
from baseshift.core.protocols import RunAnalytics
from baseshift.core.records import (
    JobDuration,
    JobSuccess,
    RunPerformance,
    RunRecord,
    WorkflowPerformance,
)
from baseshift.web.access import listing, requires, visible_workflows
from baseshift.web.limits import IntParam, TextParam, TimeParam
from baseshift.web.openapi import operation
from baseshift.web.requests import baseshift_of
from baseshift.web.responses import JSONResponse
from baseshift.web.schemas import RUN_STATUS

from .analytics_store import analytics
from .insights import insights, samples_of

TAGS = ["analytics"]
PREFIX = "/api/v1/analytics"

_SECONDS: dict[str, Any] = {"type": ["number", "null"]}
_TIME: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
_COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
_NAME: dict[str, Any] = {"type": ["string", "null"]}
WORKFLOW, RUN_ID = TextParam("workflow"), TextParam("workflow_id")
SINCE, UNTIL = TimeParam("since"), TimeParam("until")
FILTERS = (WORKFLOW, SINCE, UNTIL)


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": sorted(properties), "properties": properties}


RANGE = {"workflow": _NAME, "since": _TIME, "until": _TIME}
RUN_PERFORMANCE = _object({
    "workflow_id": {"type": "string"}, "workflow": {"type": "string"},
    "status": RUN_STATUS, "state": {**RUN_STATUS, "deprecated": True},
    **{f"{k}_jobs": _COUNT for k in ("total", "completed", "failed", "in_progress", "pending",
                                     "skipped", "cancelled")},
    "average_job_duration": _SECONDS, "total_workflow_duration": _SECONDS,
    "start_time": _TIME, "end_time": _TIME,
})
WORKFLOW_PERFORMANCE = _object({
    **RANGE,
    **{f"{k}runs": _COUNT for k in ("", "completed_", "failed_", "cancelled_", "unfinished_")},
    "total_jobs": _COUNT, "completed_jobs": _COUNT, "failed_jobs": _COUNT,
    "average_run_duration": _SECONDS, "average_job_duration": _SECONDS,
    "start_time": _TIME, "end_time": _TIME,
})
_RATE = {"total": _COUNT, "succeeded": _COUNT, "failed": _COUNT,
         "success_rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1}}
SUCCESS_RATES = _object({
    **RANGE,
    "jobs": {"type": "array", "items": _object({"name": {"type": "string"}, **_RATE})},
    "overall": _object(_RATE),
})
DURATIONS = _object({
    **RANGE,
    "jobs": {"type": "array", "items": _object({
        "name": {"type": "string"}, "count": _COUNT,
        **{f"{k}_duration": {"type": "number"} for k in ("average", "min", "max", "p95")}})},
})


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC with milliseconds and a Z; None stays None."""
    if ts is None:
        return None
    moment = dt.datetime.fromtimestamp(ts, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Filters:
    """The `workflow`, `since` and `until` query parameters. Each narrows the runs on its
    own (a range that ends before it starts selects none), so every combination the document
    allows is answered."""

    workflow: str | None
    since: float | None
    until: float | None

    @classmethod
    def of(cls, request: Request) -> Filters:
        return cls(WORKFLOW.read(request), SINCE.read(request), UNTIL.read(request))

    @property
    def given(self) -> bool:
        """Whether any filter is set (else every run is kept)."""
        return (self.workflow, self.since, self.until) != (None, None, None)

    def select(self, run: RunRecord) -> bool:
        """Whether the filters keep this run (`since <= created_at < until`)."""
        return ((self.workflow is None or run.workflow == self.workflow)
                and (self.since is None or self.since <= run.created_at)
                and (self.until is None or run.created_at < self.until))

    def json(self) -> dict[str, Any]:
        return {"workflow": self.workflow, "since": iso(self.since), "until": iso(self.until)}


@requires(ANALYTICS_READ)
@operation("Performance of one run (workflow_id, if the filters keep it) or of a workflow's "
           "runs in a time range", tags=TAGS,
           response={"anyOf": [RUN_PERFORMANCE, WORKFLOW_PERFORMANCE]},
           params=(RUN_ID, *FILTERS), errors=(400, 404))
async def workflow_performance(request: Request) -> Response:
    stats, run_id, filters = analytics_of(request), RUN_ID.read(request), Filters.of(request)
    if run_id is None:
        summary = await stats.workflow_performance_summary(
            filters.workflow, filters.since, filters.until)
        return JSONResponse(workflow_json(summary, filters))
    perf = await stats.workflow_performance(run_id)
    if perf is None:
        raise NotFound(f"there is no run '{run_id}'")
    if filters.given:  # the run's record (with every job row) only when a filter needs it
        snapshot = await baseshift_of(request).store.load_run(run_id, attempts=False)
        if snapshot is None:
            raise NotFound(f"there is no run '{run_id}'")
        if not filters.select(snapshot.run):
            raise NotFound(f"run '{run_id}' is not among the runs the filters select",
                           hint="drop workflow, since or until to see it")
    return JSONResponse(run_json(perf))


def analytics_of(request: Request) -> RunAnalytics:
    return analytics(baseshift_of(request).store)


def run_json(p: RunPerformance) -> dict[str, Any]:
    """The seed's `workflow-performance` shape of one run."""
    return {
        "workflow_id": p.run_id, "workflow": p.workflow,
        "status": p.status.value, "state": p.status.value,
        "total_jobs": p.total_jobs, "completed_jobs": p.completed_jobs,
        "failed_jobs": p.failed_jobs, "in_progress_jobs": p.in_progress_jobs,
        "pending_jobs": p.pending_jobs, "skipped_jobs": p.skipped_jobs,
        "cancelled_jobs": p.cancelled_jobs, "average_job_duration": p.average_job_duration,
        "total_workflow_duration": p.total_workflow_duration,
        "start_time": iso(p.start_time), "end_time": iso(p.end_time),
    }


def workflow_json(w: WorkflowPerformance, filters: Filters) -> dict[str, Any]:
    """The aggregate over a workflow's runs, in the same spirit as one run's shape."""
    return {
        **filters.json(), "runs": w.runs, "completed_runs": w.completed_runs,
        "failed_runs": w.failed_runs, "cancelled_runs": w.cancelled_runs,
        "unfinished_runs": w.unfinished_runs, "average_run_duration": w.average_run_duration,
        "total_jobs": w.total_jobs, "completed_jobs": w.completed_jobs,
        "failed_jobs": w.failed_jobs, "average_job_duration": w.average_job_duration,
        "start_time": iso(w.first_start), "end_time": iso(w.last_end),
    }


@requires(ANALYTICS_READ)
@operation("Succeeded and failed jobs per job name, and overall", tags=TAGS,
           response=SUCCESS_RATES, params=FILTERS, errors=(400,))
async def job_success_rate(request: Request) -> Response:
    filters = Filters.of(request)
    rates = await analytics_of(request).job_success_rate(filters.workflow, filters.since,
                                                         filters.until)
    return JSONResponse({**filters.json(), "jobs": [_rate(j, named=True) for j in rates.jobs],
                         "overall": _rate(rates.overall, named=False)})


def _rate(j: JobSuccess, *, named: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": j.name} if named else {}
    return out | {"total": j.total, "succeeded": j.succeeded, "failed": j.failed,
                  "success_rate": j.success_rate}


@requires(ANALYTICS_READ)
@operation("Durations of finished jobs per job name: count, average, min, max, p95",
           tags=TAGS, response=DURATIONS, params=FILTERS, errors=(400,))
async def average_job_duration(request: Request) -> Response:
    filters = Filters.of(request)
    durations = await analytics_of(request).average_job_duration(filters.workflow, filters.since,
                                                                 filters.until)
    return JSONResponse({**filters.json(), "jobs": [_duration(d) for d in durations]})


def _duration(d: JobDuration) -> dict[str, Any]:
    return {"name": d.name, "count": d.count, "average_duration": d.average,
            "min_duration": d.minimum, "max_duration": d.maximum, "p95_duration": d.p95}


HOURS = IntParam("hours", 1, 24 * 7, 24)
_OPT_SECONDS: dict[str, Any] = {"type": ["number", "null"], "minimum": 0}
INSIGHTS = _object({
    "hours": _COUNT, "since": _TIME, "until": _TIME, "now": _TIME,
    "states": {"type": "array", "items": RUN_STATUS},
    "runs_per_hour": {"type": "array", "items": _object({
        "hour": _TIME, "total": _COUNT,
        "counts": {"type": "object", "additionalProperties": _COUNT}})},
    "workflows": {"type": "array", "items": _object({
        "workflow": {"type": "string"}, "runs": _COUNT, "completed": _COUNT,
        "failed": _COUNT, "cancelled": _COUNT,
        "success_rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "p50_duration": _OPT_SECONDS, "p95_duration": _OPT_SECONDS})},
    "samples": _object({
        "interval": {"type": "number"}, "queue": {"type": "boolean"},
        "points": {"type": "array", "items": _object({
            "at": _TIME, "queue_depth": {"type": ["integer", "null"], "minimum": 0},
            "scheduler_lag": {"type": "number", "minimum": 0}})}}),
})


async def insights_of(request: Request) -> dict[str, Any]:
    """The Insights figures for the request's `hours`, over the workflows its actor may
    read analytics of (shared by this API and the Insights page)."""
    visible = await visible_workflows(request, ANALYTICS_READ)
    bs = baseshift_of(request)
    return await insights(analytics(bs.store), samples_of(bs), HOURS.read(request), visible)


@requires(ANALYTICS_READ, listing(ANALYTICS_READ))
@operation("The Insights figures: runs per hour by status, success rate and p50/p95 run "
           "duration per workflow, and samples of queue depth and scheduler lag",
           tags=TAGS, response=INSIGHTS, params=(HOURS,), errors=(400,))
async def insights_api(request: Request) -> Response:
    return JSONResponse(await insights_of(request))


def routes() -> list[BaseRoute]:
    """The three analytics endpoints of the seed plan, and the Insights figures."""
    return [
        Route(f"{PREFIX}/workflow-performance", workflow_performance, methods=["GET"],
              name="api_analytics:workflow_performance"),
        Route(f"{PREFIX}/job-success-rate", job_success_rate, methods=["GET"],
              name="api_analytics:job_success_rate"),
        Route(f"{PREFIX}/average-job-duration", average_job_duration, methods=["GET"],
              name="api_analytics:average_job_duration"),
        Route(f"{PREFIX}/insights", insights_api, methods=["GET"],
              name="api_analytics:insights"),
    ]
