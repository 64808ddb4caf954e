"""The workflow definitions API (the loaded `.bsw` files) and the OpenAPI document."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from baseshift.core import audit
from baseshift.core.access import (
    API_DOCS,
    RUNS_START,
    WORKFLOWS_READ,
    WORKFLOWS_RELOAD,
    WORKFLOWS_VALIDATE,
)
from baseshift.core.app.cli import package_version
from baseshift.core.compiled import WorkflowEntry
from baseshift.core.errors import BadRequest, InputError
from baseshift.core.plan import Plan
from baseshift.core.schema import secret_schema, to_json_schema
from baseshift.web.access import listing, requires, visible_workflows, workflow_named
from baseshift.web.limits import Text
from baseshift.web.openapi import build_document, operation
from baseshift.web.requests import baseshift_of, json_object, only_fields, read_json
from baseshift.web.responses import JSONResponse
from baseshift.web.schemas import (
    DIAGNOSTIC,
    INPUTS_BODY,
    STARTED,
    app_components,
    obj,
    run_response,
)

TAGS = ["definitions"]
MAX_SOURCE = 2 * 1024 * 1024

DEFINITION_SUMMARY = obj({"name": {"type": "string"}, "version": {"type": ["string", "null"]},
                          "description": {"type": ["string", "null"]},
                          "path": {"type": "string"}, "ok": {"type": "boolean"},
                          "errors": {"type": "integer"},
                          "inputs": {"type": ["object", "null"]}},
                         ("name", "path", "ok"))
DEFINITION = obj({**DEFINITION_SUMMARY["properties"], "source": {"type": "string"},
                  "plan": {"type": ["object", "null"]},
                  "dag": {"type": ["object", "null"]},
                  "diagnostics": {"type": "array", "items": DIAGNOSTIC}},
                 ("name", "path", "ok", "source", "diagnostics"))
VALIDATION = obj({"valid": {"type": "boolean"}, "workflow": {"type": ["string", "null"]},
                  "diagnostics": {"type": "array", "items": DIAGNOSTIC}},
                 ("valid", "diagnostics"))
FILENAME = Text(r"[^\x00]+", description="the name diagnostics show (uploaded.bsw)")
VALIDATE_BODY = obj({"source": {"type": "string"}, "filename": FILENAME.schema()},
                    ("source",), closed=True)


def inputs_schema(plan: Plan) -> dict[str, Any]:
    """The JSON Schema of a run's `inputs` object, from the workflow's typed inputs."""
    props: dict[str, Any] = {}
    required = []
    for spec in plan.inputs:
        schema = to_json_schema(spec.type)
        if spec.secret:
            schema = secret_schema(schema, spec.type)
        if spec.description:
            schema = {**schema, "description": spec.description}
        if spec.has_default:
            schema = {**schema, "default": spec.default}
        props[spec.name] = schema
        if not spec.has_default and not spec.optional:
            required.append(spec.name)
    return {"type": "object", "properties": props, "required": required,
            "additionalProperties": False}


def dag_json(plan: Plan) -> dict[str, Any]:
    """Nodes and edges of the plan (handlers flagged), for drawing."""
    nodes = [{"id": j.name, "uses": j.template.ref if j.template else j.uses,
              "handler": j.handler, "fanout": j.fanout is not None,
              "conditional": j.when is not None} for j in (*plan.jobs, *plan.handlers)]
    edges = [{"from": d.job, "to": j.name, "optional": d.optional}
             for j in (*plan.jobs, *plan.handlers) for d in j.needs]
    return {"nodes": nodes, "edges": edges}


def _summary(entry: WorkflowEntry) -> dict[str, Any]:
    plan = entry.plan
    return {"name": entry.name, "version": plan.version if plan else None,
            "description": plan.description if plan else None, "path": str(entry.path),
            "ok": entry.ok, "errors": sum(d.severity.value == "error" for d in entry.diagnostics),
            "inputs": inputs_schema(plan) if plan else None}


@requires(WORKFLOWS_READ, listing(WORKFLOWS_READ))
@operation("List the loaded workflows (files with errors included) the caller may read",
           tags=TAGS, response={"type": "array", "items": DEFINITION_SUMMARY})
async def list_definitions(request: Request) -> Response:
    visible = await visible_workflows(request, WORKFLOWS_READ)
    return JSONResponse([_summary(e) for e in baseshift_of(request).catalog.entries()
                         if visible is None or e.name in visible])


@requires(WORKFLOWS_RELOAD)
@operation("Reload the workflows folder now (the server also watches it): the workflows "
           "loaded, files with errors included", tags=TAGS,
           response={"type": "array", "items": DEFINITION_SUMMARY}, body_required=False)
async def reload_definitions(request: Request) -> Response:
    bs = baseshift_of(request)
    await bs.catalog.refresh(force=True)
    bs.catalog.log_summary("reloaded")
    summaries = [_summary(e) for e in bs.catalog.entries()]
    await audit.record(bs.store, [audit.entry(
        "workflows.reload", "server:workflows", workflows=str(len(summaries)))])
    return JSONResponse(summaries)


@requires(WORKFLOWS_READ, workflow_named("name"))
@operation("One workflow: source, plan, DAG, diagnostics", tags=TAGS, response=DEFINITION,
           errors=(404,))
async def get_definition(request: Request) -> Response:
    entry = baseshift_of(request).catalog.get(request.path_params["name"])
    plan = entry.plan
    return JSONResponse({**_summary(entry), "source": entry.source,
                         "plan": plan.to_json() if plan else None,
                         "dag": dag_json(plan) if plan else None,
                         "diagnostics": [d.to_json() for d in entry.diagnostics]})


@requires(RUNS_START, workflow_named("name"))
@operation("Start a run of this workflow (no body: no inputs)", tags=TAGS, request=INPUTS_BODY,
           response=STARTED, status=201, errors=(400, 404, 409, 422), body_required=False)
async def start_definition(request: Request) -> Response:
    body = json_object(await read_json(request, default={}), "body")
    only_fields(body, {"inputs"})
    run_id = await baseshift_of(request).runs.start(request.path_params["name"],
                                                    json_object(body.get("inputs"), "inputs"))
    return run_response(run_id, 201)


@requires(WORKFLOWS_VALIDATE)
@operation("Check a .bsw text (JSON {source, filename} or the raw text): every error with "
           "line and column", tags=TAGS, request=VALIDATE_BODY, response=VALIDATION,
           errors=(400, 422))
async def validate_definition(request: Request) -> Response:
    source, filename = await _source(request)
    bs = baseshift_of(request)
    return JSONResponse(await bs.catalog.validation(source, filename, bs.cache))


async def _source(request: Request) -> tuple[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type.startswith("text/"):
        raw = await request.body()
        if len(raw) > MAX_SOURCE:
            raise BadRequest("the workflow text is larger than 2 MiB")
        try:
            return raw.decode("utf-8"), "uploaded.bsw"
        except UnicodeDecodeError:
            raise BadRequest("the workflow text is not UTF-8") from None
    body = json_object(await read_json(request), "body")
    only_fields(body, {"source", "filename"})
    source, filename = body.get("source"), body.get("filename", "uploaded.bsw")
    if not isinstance(source, str):
        raise InputError("field 'source' must be the workflow text", details={"field": "source"})
    if not FILENAME.accepts(filename):
        raise InputError("field 'filename' must be a file name", details={"field": "filename"})
    return source, filename


@requires(API_DOCS)
async def openapi_document(request: Request) -> Response:
    bs = baseshift_of(request)
    components = app_components(bs.executor_classes, bs.hooks.permissions())
    return JSONResponse(build_document(request.app.routes, title="Base Shift API",
                                       version=package_version(), components=components))


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/openapi.json", openapi_document, methods=["GET"],
              name="api_workflows:openapi"),
        Route("/api/v1/definitions", list_definitions, methods=["GET"],
              name="api_workflows:list"),
        Route("/api/v1/definitions/validate", validate_definition, methods=["POST"],
              name="api_workflows:validate"),
        Route("/api/v1/definitions/reload", reload_definitions, methods=["POST"],
              name="api_workflows:reload"),
        Route("/api/v1/definitions/{name}", get_definition, methods=["GET"],
              name="api_workflows:get"),
        Route("/api/v1/definitions/{name}/runs", start_definition, methods=["POST"],
              name="api_workflows:start"),
    ]
