"""The job template store over REST: `/api/v1/templates` (list, versions, publish, delete, diff)."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from baseshift.core.access import TEMPLATES_DELETE, TEMPLATES_PUBLISH, TEMPLATES_READ
from baseshift.core.app.compile_cache import forget_compiled
from baseshift.core.app.templatespec import to_spec
from baseshift.core.errors import BadRequest, StoreError
from baseshift.core.templatestore import (
    MAX_NAME,
    NAME,
    STEP_NAME,
    TemplateDocument,
    check_step_types,
    not_found,
    parse_document,
)
from baseshift.web.access import requires
from baseshift.web.limits import VERSION, VERSION_RANGE, Text, TextParam, whole
from baseshift.web.openapi import operation
from baseshift.web.requests import baseshift_of, json_object, read_json
from baseshift.web.responses import JSONResponse
from baseshift.web.schemas import EXECUTOR, obj

from . import audited, resolved
from .common import KnownTemplates, ListedTemplate, diff_json, template_store
from .publishing import parse_bump

if TYPE_CHECKING:
    from baseshift.core.appface import App

log = logging.getLogger("baseshift.templates")

TAGS = ["templates"]
_STRING = {"type": "string"}
_SCHEMA = {"type": "object"}
_NAME = Text(whole(NAME), min_length=1, max_length=MAX_NAME).schema()
STEP = obj({"name": Text(whole(STEP_NAME)).schema(), "type": EXECUTOR,
            "config": {"type": "object"}}, ("type",), closed=True)
FIELDS = {"templateId": _NAME, "name": _NAME, "version": VERSION.schema(),
          "description": {"type": ["string", "null"]},
          "steps": {"type": "array", "items": STEP, "minItems": 1},
          "inputSchema": _SCHEMA, "outputSchema": _SCHEMA,
          "created_at": {"type": ["number", "null"]}}
ORIGIN = {"source": {"enum": ["store", "file"]}, "path": {"type": ["string", "null"]},
          "readOnly": {"type": "boolean"}}
"""Where a listed template comes from: read-only when a workflow folder's file defines it."""
DOCUMENT = obj({**FIELDS, **ORIGIN}, ("templateId", "version", "steps", "inputSchema",
                                      "outputSchema", "source", "path", "readOnly"))
_NAMED_ONCE = {"oneOf": [{"required": [key], "properties": {alias: False}}
                         for key, alias in (("templateId", "name"), ("name", "templateId"))]}
_VERSION_OR_BUMP = {"oneOf": [
    {"required": ["version"], "properties": {"version": VERSION.schema(), "bump": False}},
    {"required": ["bump"], "properties": {"version": {"type": "null"}}}]}
PUBLISH_BODY = {**obj({**FIELDS, "bump": {"enum": ["major", "minor", "patch"]},
                       "version": {"anyOf": [VERSION.schema(), {"type": "null"}]},
                       "inputSchema": {"type": ["object", "null"],
                                       "properties": {"type": {"const": "object"}}},
                       "outputSchema": {"type": ["object", "null"]},
                       "created_at": {"description": "ignored: publishing sets it"}},
                      ("steps",), closed=True),
                "allOf": [_NAMED_ONCE, _VERSION_OR_BUMP],
                "description": "templateId (or its alias name); a version, or a bump to derive "
                               "it; steps with different names"}
TEMPLATE_LIST = obj({"templates": {"type": "array", "items": DOCUMENT}}, ("templates",))
VERSIONS = obj({"name": _STRING, "latest": _STRING,
                "versions": {"type": "array", "items": DOCUMENT}}, ("name", "latest", "versions"))
DIFF = obj({"name": _STRING, "from": _STRING, "to": _STRING, "compatible": {"type": "boolean"},
            "reasons": {"type": "array", "items": _STRING},
            "changes": {"type": "array", "items": obj({
                "path": _STRING, "change": {"enum": ["added", "removed", "changed"]},
                "from": {}, "to": {}}, ("path", "change"))}},
           ("name", "from", "to", "compatible", "reasons", "changes"))
FILTERS = {"name": _STRING, "type": _STRING, "version": VERSION_RANGE.schema()}
_RANGE_PATH = {"version": VERSION_RANGE.schema()}


def validate_for(bs: App, doc: TemplateDocument) -> None:
    """Refuse unknown step types and configs that do not parse, before storing anything."""
    from baseshift.dsl import parse_expression

    check_step_types(doc, bs.executor_classes)
    to_spec(doc, parse_expression)


@requires(TEMPLATES_READ)
@operation("List templates (every version): the store's and those defined in workflow "
           "files (read-only)", tags=TAGS, response=TEMPLATE_LIST, query=FILTERS,
           errors=(400, 422))
async def list_templates(request: Request) -> Response:
    q = request.query_params
    listed = await KnownTemplates(baseshift_of(request)).list(
        q.get("name"), type=q.get("type"), version=q.get("version"))
    return JSONResponse({"templates": [t.to_json() for t in listed]})


@requires(TEMPLATES_READ)
@operation("The versions of one template", tags=TAGS, response=VERSIONS, errors=(404,))
async def get_versions(request: Request) -> Response:
    name = request.path_params["name"]
    listed = await KnownTemplates(baseshift_of(request)).list(name)
    if not listed:
        raise not_found(name)
    return JSONResponse({"name": name, "latest": listed[-1].doc.version,
                         "versions": [t.to_json() for t in listed]})


@requires(TEMPLATES_READ)
@operation("One version of a template (an exact version or a range like ^1.2)", tags=TAGS,
           response=DOCUMENT, errors=(404, 422), path=_RANGE_PATH)
async def get_version(request: Request) -> Response:
    bs, p = baseshift_of(request), request.path_params
    key = resolved.resolved_key(p["name"], p["version"], bs.catalog.file_templates)
    kept = await resolved.lookup(bs.cache, key)
    if kept is not None:
        return JSONResponse(kept)
    answer = (await KnownTemplates(bs).require(p["name"], p["version"])).to_json()
    await resolved.keep(bs.cache, key, answer)
    return JSONResponse(answer)


@requires(TEMPLATES_PUBLISH)
@operation("Publish a template version (give `version`, or `bump` to derive it)", tags=TAGS,
           request=PUBLISH_BODY, response=DOCUMENT, status=201, errors=(400, 409, 422))
async def publish_template(request: Request) -> Response:
    bs = baseshift_of(request)
    body = dict(json_object(await read_json(request), "the body"))
    if not body:
        raise BadRequest("the body must be a template document")
    bump = parse_bump(body.pop("bump")) if "bump" in body else None
    doc = parse_document(body, need_version=bump is None)
    validate_for(bs, doc)
    KnownTemplates(bs).refuse_publish(doc.name)
    stored = await audited.publish(bs.store, template_store(bs), doc, bump)
    await bs.catalog.refresh(force=True)  # workflows may now use it
    await forget_cached(bs, stored.name)
    url = request.url_for("api_templates:version", name=stored.name, version=stored.version)
    return JSONResponse(ListedTemplate(stored).to_json(), status_code=201,
                        headers={"Location": str(url)})


@requires(TEMPLATES_DELETE)
@operation("Delete one template version (not one defined in a workflow file)", tags=TAGS,
           status=204, errors=(404, 409))
async def delete_template(request: Request) -> Response:
    bs = baseshift_of(request)
    p = request.path_params
    KnownTemplates(bs).refuse_delete(p["name"], p["version"])
    await audited.delete(bs.store, template_store(bs), p["name"], p["version"])
    await bs.catalog.refresh(force=True)
    await forget_cached(bs, p["name"])
    return Response(status_code=204)


@requires(TEMPLATES_READ)
@operation("Differences between two versions, and why callers would break", tags=TAGS,
           response=DIFF, errors=(400, 404, 422),
           params=(TextParam("from", VERSION_RANGE, required=True),
                   TextParam("to", VERSION_RANGE, required=True)))
async def diff_templates(request: Request) -> Response:
    name = request.path_params["name"]
    q = request.query_params
    if not q.get("from") or not q.get("to"):
        raise BadRequest("give both versions: ?from=1.0.0&to=1.1.0")
    known = KnownTemplates(baseshift_of(request))
    old, new = await known.require(name, q["from"]), await known.require(name, q["to"])
    return JSONResponse(diff_json(old.doc, new.doc))


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/templates", list_templates, methods=["GET"],
              name="api_templates:list"),
        Route("/api/v1/templates", publish_template, methods=["POST"],
              name="api_templates:publish"),
        Route("/api/v1/templates/{name}", get_versions, methods=["GET"],
              name="api_templates:versions"),
        Route("/api/v1/templates/{name}/diff", diff_templates, methods=["GET"],
              name="api_templates:diff"),
        Route("/api/v1/templates/{name}/{version}", get_version, methods=["GET"],
              name="api_templates:version"),
        Route("/api/v1/templates/{name}/{version}", delete_template, methods=["DELETE"],
              name="api_templates:delete"),
    ]


async def forget_cached(bs: App, name: str) -> None:
    """Drop what the cache keeps about template `name` (its resolved versions) and the
    checked texts (they may use it): their keys already name the old templates, so this
    frees their room; a failing cache is logged, never a failed publish."""
    try:
        await resolved.forget(bs.cache, name)
        await forget_compiled(bs.cache)
    except StoreError as exc:
        log.warning("could not drop template %s from the cache: %s", name, exc.message)
