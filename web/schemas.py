"""JSON Schemas of the API's bodies and responses, for the OpenAPI document."""
from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

_NULLABLE_NUMBER = {"type": ["number", "null"]}
_NULLABLE_STRING = {"type": ["string", "null"]}
_RUN_STATES = ["INITIALIZED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"]
_JOB_STATES = ["PENDING", "READY", "RUNNING", "SUCCEEDED", "FAILED", "RETRYING", "SKIPPED",
               "CANCELLED"]


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
PUT_JOB_BODY = obj({"status": {"enum": ["completed", "failed"]}, "output": {},
                    "error": {"type": "string", "minLength": 1}}, ("status",), closed=True)

def run_response(run_id: str, status: int) -> JSONResponse:
    """The answer to starting or reopening a run: its id and where to follow it (STARTED)."""
    url = f"/api/v1/workflows/{run_id}"
    return JSONResponse({"workflow_id": run_id, "status_url": f"{url}/status", "url": url},
                        status_code=status, headers={"Location": url})


STARTED = obj({"workflow_id": {"type": "string"}, "status_url": {"type": "string"},
               "url": {"type": "string"}}, ("workflow_id",))

ATTEMPT = obj({"number": {"type": "integer"}, "state": {"enum": _JOB_STATES},
               "started_at": {"type": "number"}, "ended_at": _NULLABLE_NUMBER,
               "duration": _NULLABLE_NUMBER, "error": _NULLABLE_STRING,
               "log": {"type": "string"}}, ("number", "state"))
JOB = obj({"key": {"type": "string"}, "name": {"type": "string"},
           "index": {"type": ["integer", "null"]}, "state": {"enum": _JOB_STATES},
           "template": _NULLABLE_STRING, "handler": {"type": "boolean"}, "inputs": {},
           "output": {}, "error": _NULLABLE_STRING, "started_at": _NULLABLE_NUMBER,
           "ended_at": _NULLABLE_NUMBER, "duration": _NULLABLE_NUMBER,
           "attempts": {"type": "array", "items": ATTEMPT}}, ("key", "name", "state"))
RUN_FIELDS: dict[str, Any] = {
    "id": {"type": "string"}, "workflow": {"type": "string"}, "version": {"type": "string"},
    "status": {"enum": _RUN_STATES}, "path": {"type": "string"}, "inputs": {"type": "object"},
    "outputs": {"type": ["object", "null"]}, "error": _NULLABLE_STRING,
    "created_at": {"type": "number"}, "started_at": _NULLABLE_NUMBER,
    "ended_at": _NULLABLE_NUMBER, "duration": _NULLABLE_NUMBER}
RUN_SUMMARY = obj(RUN_FIELDS, ("id", "workflow", "status"))
RUN = obj({**RUN_FIELDS, "jobs": {"type": "array", "items": JOB}}, ("id", "workflow", "status"))
RUN_PAGE = obj({"runs": {"type": "array", "items": RUN_SUMMARY},
                "next_cursor": _NULLABLE_STRING}, ("runs", "next_cursor"))

_JOB_REF = obj({"id": {"type": "string"}, "name": {"type": "string"},
                "status": {"type": "string"}, "state": {"enum": _JOB_STATES}},
               ("id", "name", "status"))
STATUS = obj({"workflow_id": {"type": "string"}, "workflow": {"type": "string"},
              "status": {"type": "string"}, "state": {"enum": _RUN_STATES},
              "current_job": {"anyOf": [_JOB_REF, {"type": "null"}]},
              "running_jobs": {"type": "array", "items": _JOB_REF},
              "completed_jobs": {"type": "array", "items": _JOB_REF},
              "pending_jobs": {"type": "array", "items": _JOB_REF},
              "error": _NULLABLE_STRING},
             ("workflow_id", "status", "current_job", "completed_jobs", "pending_jobs"))

DIAGNOSTIC = obj({"path": {"type": "string"}, "line": {"type": "integer"},
                  "col": {"type": "integer"}, "end_line": {"type": "integer"},
                  "end_col": {"type": "integer"}, "severity": {"type": "string"},
                  "code": {"type": "string"}, "message": {"type": "string"},
                  "hint": _NULLABLE_STRING}, ("path", "line", "col", "code", "message"))
