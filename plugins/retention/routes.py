"""The retention API: a run's legal hold (`runs:hold`), a run's erasure (`runs:erase`) and
applying the policies now (`retention:apply`)."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from baseshift.core.access import Permission
from baseshift.core.errors import InputError
from baseshift.web.access import requires, run_resource
from baseshift.web.openapi import operation
from baseshift.web.requests import baseshift_of, json_object, only_fields, read_json
from baseshift.web.responses import JSONResponse
from baseshift.web.schemas import obj

from .service import apply_policies, documents_of, erase, policy_of, set_hold

RUNS_HOLD = Permission("runs:hold", "put runs on legal hold and take them off", True)
RUNS_ERASE = Permission("runs:erase", "erase a finished run's data (a data subject's "
                        "request), leaving a tombstone", True)
RETENTION_APPLY = Permission("retention:apply", "apply the data retention policies now")
PERMISSIONS = (RUNS_HOLD, RUNS_ERASE, RETENTION_APPLY)

TAGS = ["retention"]
BOOLEAN = {"type": "boolean"}
COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}
HOLD_BODY = obj({"hold": BOOLEAN}, ("hold",), closed=True)
HOLD = obj({"run_id": {"type": "string"}, "hold": BOOLEAN}, ("run_id", "hold"))
TOMBSTONE = obj({"run_id": {"type": "string"}, "workflow": {"type": "string"},
                 "erased_at": {"type": "number"}, "erased_by": {"type": "string"}},
                ("run_id", "workflow", "erased_at", "erased_by"))
APPLY_BODY = obj({"dry_run": BOOLEAN}, ("dry_run",), closed=True)
APPLIED = obj({"dry_run": BOOLEAN, "applied_at": {"type": "number"}, "removed": COUNTS,
               "held": {"type": "integer"},
               "policies": {"type": "object", "additionalProperties": {"type": "number"}}},
              ("dry_run", "applied_at", "removed", "held", "policies"))


async def _flag(request: Request, name: str) -> bool:
    """The body `{"<name>": true|false}`: 400 for a body that is not JSON, 422 for any
    other shape."""
    body = json_object(await read_json(request), "body")
    only_fields(body, {name})
    value: Any = body.get(name)
    if not isinstance(value, bool):
        raise InputError(f"field '{name}' must be true or false", details={"field": name})
    return value


@requires(RUNS_HOLD, run_resource)
@operation("Put a run on legal hold (retention and erasure leave it alone) or take it off",
           tags=TAGS, request=HOLD_BODY, response=HOLD, errors=(400, 404, 422))
async def legal_hold(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    hold = await _flag(request, "hold")
    await set_hold(baseshift_of(request).store, run_id, hold)
    return JSONResponse({"run_id": run_id, "hold": hold})


@requires(RUNS_ERASE, run_resource)
@operation("Erase a finished run's inputs, outputs, errors, logs and attempts, leaving a "
           "tombstone (reading the run then answers 410)", tags=TAGS, response=TOMBSTONE,
           errors=(404, 409))
async def erase_run(request: Request) -> Response:
    bs = baseshift_of(request)
    tombstone = await erase(bs.store, request.path_params["run_id"], documents_of(bs))
    return JSONResponse(tombstone.to_json())


@requires(RETENTION_APPLY)
@operation("Apply the data retention policies now; a dry run only counts what would go",
           tags=TAGS, request=APPLY_BODY, response=APPLIED, errors=(400, 422))
async def apply_policy(request: Request) -> Response:
    bs = baseshift_of(request)
    dry_run = await _flag(request, "dry_run")
    done = await apply_policies(bs.store, bs.templates, policy_of(bs.settings),
                                bs.settings.data_dir, dry_run=dry_run,
                                documents=documents_of(bs))
    return JSONResponse(done.to_json())


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/workflows/{run_id}/legal-hold", legal_hold, methods=["POST"],
              name="retention:hold"),
        Route("/api/v1/workflows/{run_id}/data", erase_run, methods=["DELETE"],
              name="retention:erase"),
        Route("/api/v1/data-retention/apply-policy", apply_policy, methods=["POST"],
              name="retention:apply"),
    ]
