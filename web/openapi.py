"""The OpenAPI 3 document, built from the `@operation` metadata on each API view."""
from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Route

from baseshift.core.errors import BadRequest

from .access import access_of
from .limits import Param
from .schemas import COMPONENTS

F = TypeVar("F", bound=Callable[..., Any])

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"},
        "code": {"type": "string"}, "hint": {"type": ["string", "null"]},
        "instance": {"type": "string"},
    },
}


@dataclass(frozen=True)
class Operation:
    """What the document says about one view: summary, schemas, parameters, statuses."""

    summary: str
    tags: tuple[str, ...] = ()
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    query: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: int = 200
    errors: tuple[int, ...] = ()
    content_type: str = "application/json"
    body_required: bool = True
    """False for views that read a missing body as `{}` (start a run without inputs)."""
    params: tuple[Param, ...] = ()
    """Query parameters declared with their limits (web/limits.py), read through them."""
    path: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Schemas of path parameters (a string otherwise)."""
    request_type: str = "application/json"
    """The media type of the request body (a form for the OAuth 2.0 token endpoint)."""
    error_type: str = "application/problem+json"
    error_schema: dict[str, Any] = field(default_factory=lambda: PROBLEM_SCHEMA)
    """What the `errors` answer: problems, or a protocol's own errors (OAuth 2.0's)."""


def operation(summary: str, *, tags: Sequence[str] = (), request: dict[str, Any] | None = None,
              response: dict[str, Any] | None = None,
              query: dict[str, dict[str, Any]] | None = None, status: int = 200,
              errors: Sequence[int] = (),
              content_type: str = "application/json",
              body_required: bool = True, params: Sequence[Param] = (),
              path: dict[str, dict[str, Any]] | None = None,
              request_type: str = "application/json",
              error_type: str = "application/problem+json",
              error_schema: dict[str, Any] | None = None) -> Callable[[F], F]:
    """Describe an API view for the OpenAPI document (views without it are not listed).

    The view then also refuses a query parameter the description does not name (400 with
    the known names): `?stat=RUNNING` must not answer every run as if nothing was asked."""

    def mark(view: F) -> F:
        op = Operation(summary, tuple(tags), request, response, dict(query or {}), status,
                       tuple(errors), content_type, body_required, tuple(params),
                       dict(path or {}), request_type, error_type,
                       error_schema or PROBLEM_SCHEMA)
        known = frozenset((*op.query, *(p.name for p in op.params)))

        @functools.wraps(view)
        async def checked(request: Request) -> Any:
            unknown = [k for k in request.query_params if k not in known]
            if unknown:
                raise unknown_parameter(unknown[0], known)
            return await view(request)

        checked.__openapi__ = op  # type: ignore[attr-defined]
        return checked  # type: ignore[return-value]

    return mark


def unknown_parameter(name: str, known: Iterable[str]) -> BadRequest:
    """The 400 for a query parameter a view does not take, with the one meant if it is close."""
    close = difflib.get_close_matches(name, sorted(known), n=1)
    hint = (f"did you mean '{close[0]}'?" if close else
            f"this endpoint takes {', '.join(sorted(known))}" if known else
            "this endpoint takes no query parameters")
    return BadRequest(f"unknown query parameter '{name}'", hint=hint,
                      details={"parameter": name})


def build_document(routes: Iterable[BaseRoute], *, title: str, version: str,
                   components: dict[str, Any] | None = None) -> dict[str, Any]:
    """An OpenAPI 3.1 document for every described route under any mount; `components`
    adds schemas that depend on the application (web/schemas.py: `app_components`)."""
    paths: dict[str, dict[str, Any]] = {}
    ids: set[str] = set()
    for path, methods, endpoint in _walk(routes, ""):
        op: Operation | None = getattr(endpoint, "__openapi__", None)
        if op is None:
            continue
        for method in sorted(methods - {"HEAD"}):
            described = _operation(path, method, op, endpoint)
            described["operationId"] = _unique_id(described["operationId"], path, ids)
            paths.setdefault(clean_path(path), {})[method.lower()] = described
    return {"openapi": "3.1.0", "info": {"title": title, "version": version},
            "paths": dict(sorted(paths.items())),
            "components": {"schemas": {**COMPONENTS, **(components or {})},
                           "securitySchemes": {"bearer": {
                               "type": "http", "scheme": "bearer",
                               "description": "an access token (POST /api/v1/auth/login) "
                                              "or an API token (bsat_…)"}}}}


def _unique_id(base: str, path: str, taken: set[str]) -> str:
    """The view's id; a view served at a second path (an alias) gets the path appended."""
    name = base
    if name in taken:
        name = base + "_" + re.sub(r"[^A-Za-z0-9]+", "_", clean_path(path)).strip("_")
    taken.add(name)
    return name


def _walk(routes: Iterable[BaseRoute], prefix: str) -> Iterable[tuple[str, set[str], Any]]:
    for route in routes:
        if isinstance(route, Route):
            yield prefix + route.path, set(route.methods or {"GET"}), route.endpoint
        elif isinstance(route, Mount) and route.routes:
            yield from _walk(route.routes, prefix + route.path)


_PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")


def _operation(path: str, method: str, op: Operation, endpoint: Any) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True,
         "schema": op.path.get(name, {"type": "string"})}
        for name in _PARAM.findall(path)]
    params += [{"name": n, "in": "query", "required": False, "schema": s}
               for n, s in op.query.items()]
    params += [{"name": p.name, "in": "query", "required": p.required, "schema": p.schema()}
               for p in op.params]
    out: dict[str, Any] = {
        "summary": op.summary,
        "operationId": f"{endpoint.__module__.rsplit('.', 1)[-1]}_{endpoint.__name__}",
        "tags": list(op.tags),
        "responses": _responses(op),
    }
    access = access_of(endpoint)
    if access is not None:
        # who may call it: a bearer token with the permission, or anyone (public routes)
        out["security"] = [{"bearer": []}] if access.permission else []
        if access.permission:
            out["x-permission"] = access.permission
            problem = {"content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}}}
            out["responses"].setdefault("401", {"description": "not signed in", **problem})
            out["responses"].setdefault("403", {"description": "lacks the permission",
                                                **problem})
    if params:
        out["parameters"] = params
    if op.request is not None:
        out["requestBody"] = {"required": op.body_required,
                              "content": {op.request_type: {"schema": op.request}}}
    return out


def _responses(op: Operation) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "OK"}
    if op.response is not None:
        ok["content"] = {op.content_type: {"schema": op.response}}
    out: dict[str, Any] = {str(op.status): ok}
    problem = {"content": {op.error_type: {"schema": op.error_schema}}}
    for status in sorted({*op.errors, *((400,) if op.request is not None else ())}):
        out[str(status)] = {"description": "problem", **problem}
    return out


def clean_path(path: str) -> str:
    """`/runs/{id:str}` -> `/runs/{id}` (Starlette converters are not OpenAPI syntax)."""
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path)
