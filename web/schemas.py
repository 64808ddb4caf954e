"""JSON Schemas of the API's bodies and responses, for the OpenAPI document."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from baseshift.core.states import JobState, RunState

from .responses import JSONResponse

_NULLABLE_NUMBER = {"type": ["number", "null"]}
_NULLABLE_STRING = {"type": ["string", "null"]}

COMPONENTS: dict[str, Any] = {
    "RunStatus": {"type": "string", "enum": [s.value for s in RunState],
                  "description": "A run's status; the same words in every endpoint and event"},
    "JobStatus": {"type": "string", "enum": [s.value for s in JobState],
                  "description": "A job's or attempt's status; the same words everywhere"},
}
"""Schemas the document declares once, under `components/schemas`, for the `$ref`s below."""
RUN_STATUS: dict[str, Any] = {"$ref": "#/components/schemas/RunStatus"}
JOB_STATUS: dict[str, Any] = {"$ref": "#/components/schemas/JobStatus"}
EXECUTOR: dict[str, Any] = {"$ref": "#/components/schemas/Executor"}
PERMISSION: dict[str, Any] = {"$ref": "#/components/schemas/Permission"}


def app_components(executors: Iterable[str], permissions: Iterable[str] = ()
                   ) -> dict[str, Any]:
    """Components that depend on the running application: the executors installed (what
    a template step's `type` must name, as the server checks) and the permissions the
    plugins declare (what a role may hold; `*` is every one)."""
    return {"Executor": {"type": "string", "enum": sorted(executors),
                         "description": "an installed executor"},
            "Permission": {"type": "string", "enum": ["*", *sorted(permissions)],
                           "description": "a declared permission"}}


def obj(properties: dict[str, Any], required: tuple[str, ...] = (), *,
        closed: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": properties,
                           "required": list(required)}
    if closed:
        out["additionalProperties"] = False
    return out


START_BODY = obj({"workflow": {"type": "string", "minLength": 1},
                  "inputs": {"type": "object"}}, ("workflow",), closed=True)
INPUTS_BODY = obj({"inputs": {"type": "object"}}, closed=True)
RERUN_BODY = obj({"from_job": {"type": "string", "minLength": 1}}, ("from_job",), closed=True)
COMPLETE_BODY = obj({"output": {}}, closed=True)
FAIL_BODY = obj({"error": {"type": "string", "minLength": 1}}, closed=True)
PUT_JOB_STATUSES: dict[str, JobState] = {
    "SUCCEEDED": JobState.SUCCEEDED, "FAILED": JobState.FAILED,
    "completed": JobState.SUCCEEDED, "failed": JobState.FAILED}
"""What `PUT .../jobs/{job}` may set: the job vocabulary's words, and the seed plan's
`completed`/`failed` for clients written against it."""
PUT_JOB_BODY = obj({"status": {"enum": list(PUT_JOB_STATUSES)}, "output": {},
                    "error": {"type": "string", "minLength": 1}}, ("status",), closed=True)
ACCEPTED = obj({"workflow_id": {"type": "string"}, "job": {"type": "string"},
                "accepted": {**JOB_STATUS, "description": "the state the job is moving to"}},
               ("workflow_id", "job", "accepted"))

def run_response(run_id: str, status: int) -> JSONResponse:
    """The answer to starting or reopening a run: its id and where to follow it (STARTED)."""
    url = f"/api/v1/workflows/{run_id}"
    return JSONResponse({"workflow_id": run_id, "status_url": f"{url}/status", "url": url},
                        status_code=status, headers={"Location": url})


STARTED = obj({"workflow_id": {"type": "string"}, "status_url": {"type": "string"},
               "url": {"type": "string"}}, ("workflow_id",))

ATTEMPT = obj({"number": {"type": "integer"}, "state": JOB_STATUS,
               "started_at": {"type": "number"}, "ended_at": _NULLABLE_NUMBER,
               "duration": _NULLABLE_NUMBER, "error": _NULLABLE_STRING,
               "log": {"type": "string"}}, ("number", "state"))
JOB = obj({"key": {"type": "string"}, "name": {"type": "string"},
           "index": {"type": ["integer", "null"]}, "state": JOB_STATUS,
           "template": _NULLABLE_STRING, "handler": {"type": "boolean"}, "inputs": {},
           "output": {}, "error": _NULLABLE_STRING, "started_at": _NULLABLE_NUMBER,
           "ended_at": _NULLABLE_NUMBER, "duration": _NULLABLE_NUMBER,
           "attempts": {"type": "array", "items": ATTEMPT}}, ("key", "name", "state"))
RUN_FIELDS: dict[str, Any] = {
    "id": {"type": "string"}, "workflow": {"type": "string"}, "version": {"type": "string"},
    "status": RUN_STATUS, "path": {"type": "string"}, "inputs": {"type": "object"},
    "outputs": {"type": ["object", "null"]}, "error": _NULLABLE_STRING,
    "created_at": {"type": "number"}, "started_at": _NULLABLE_NUMBER,
    "ended_at": _NULLABLE_NUMBER, "duration": _NULLABLE_NUMBER}
RUN_SUMMARY = obj(RUN_FIELDS, ("id", "workflow", "status"))
RUN = obj({**RUN_FIELDS, "jobs": {"type": "array", "items": JOB}}, ("id", "workflow", "status"))
RUN_PAGE = obj({"runs": {"type": "array", "items": RUN_SUMMARY},
                "next_cursor": _NULLABLE_STRING}, ("runs", "next_cursor"))

_JOB_REF = obj({"id": {"type": "string"}, "name": {"type": "string"},
                "status": JOB_STATUS, "state": {**JOB_STATUS, "deprecated": True}},
               ("id", "name", "status", "state"))
STATUS = obj({"workflow_id": {"type": "string"}, "workflow": {"type": "string"},
              "status": RUN_STATUS, "state": {**RUN_STATUS, "deprecated": True},
              "current_job": {"anyOf": [_JOB_REF, {"type": "null"}]},
              "running_jobs": {"type": "array", "items": _JOB_REF},
              "completed_jobs": {"type": "array", "items": _JOB_REF},
              "pending_jobs": {"type": "array", "items": _JOB_REF},
              "error": _NULLABLE_STRING},
             ("workflow_id", "workflow", "status", "state", "current_job", "running_jobs",
              "completed_jobs", "pending_jobs", "error"))

DIAGNOSTIC = obj({"path": {"type": "string"}, "line": {"type": "integer"},
                  "col": {"type": "integer"}, "end_line": {"type": "integer"},
                  "end_col": {"type": "integer"}, "severity": {"type": "string"},
                  "code": {"type": "string"}, "message": {"type": "string"},
                  "hint": _NULLABLE_STRING}, ("path", "line", "col", "code", "message"))
