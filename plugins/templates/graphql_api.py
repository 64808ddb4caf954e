"""GraphQL over the job template store: `/graphql` with the seed's schema, using graphql-core
(`baseshift[graphql]`; the `graphql_templates` plugin imports this module only then).

`POST /graphql` takes `{"query", "variables", "operationName"}`; `GET /graphql?query=...`
works too. Answers are GraphQL's own `{"data", "errors"}`, also for malformed requests.
"""
from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError, GraphQLSchema, build_schema, graphql
from graphql.type import GraphQLScalarType
from starlette.requests import Request
from starlette.responses import Response

from baseshift.core.errors import BaseShiftError
from baseshift.web.requests import read_json
from baseshift.web.responses import JSONResponse

from .common import KnownTemplates, ListedTemplate

if TYPE_CHECKING:
    from baseshift.core.appface import App

SDL = """
"A JSON object (step configs, JSON Schemas)."
scalar JSONObject

"One version of a job template; `id` is the template's name."
type JobTemplate {
  id: ID!
  name: String!
  version: String!
  description: String
  createdAt: Float
  steps: [JobStep!]!
  inputSchema: JSONObject!
  outputSchema: JSONObject!
  "Where it comes from: store (published) or file (defined in a workflow folder's file)."
  source: String!
  "The file that defines it, for source file."
  path: String
  "True for a template defined in a file: edit the file to change it."
  readOnly: Boolean!
}

type JobStep {
  name: String!
  type: String!
  config: JSONObject!
}

type Query {
  "One version: exact (1.2.0), a range (^1.2), or the highest when version is omitted."
  jobTemplate(id: ID!, version: String): JobTemplate
  "Every version matching the filter (published or in files), by name then version."
  jobTemplates(filter: JobTemplateFilter): [JobTemplate!]!
}

input JobTemplateFilter {
  name: String
  "An exact version or a range."
  version: String
  "Templates with a step of this executor type."
  type: String
}
"""


def _json_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise GraphQLError(f"JSONObject cannot represent {type(value).__name__}")
    return value


@cache
def template_schema() -> GraphQLSchema:
    """The executable schema, built once: SDL plus resolvers."""
    schema = build_schema(SDL)
    scalar = schema.type_map["JSONObject"]
    assert isinstance(scalar, GraphQLScalarType)
    scalar.serialize = _json_object  # type: ignore[method-assign]
    scalar.parse_value = _json_object  # type: ignore[method-assign]
    assert schema.query_type is not None
    schema.query_type.fields["jobTemplate"].resolve = resolve_template
    schema.query_type.fields["jobTemplates"].resolve = resolve_templates
    return schema


def template_json(listed: ListedTemplate) -> dict[str, Any]:
    doc = listed.doc
    return {"id": doc.name, "name": doc.name, "version": doc.version,
            "description": doc.description, "createdAt": doc.created_at,
            "steps": [s.to_json() for s in doc.steps],
            "inputSchema": doc.input_schema, "outputSchema": doc.output_schema,
            "source": listed.source, "path": None if listed.path is None else str(listed.path),
            "readOnly": listed.read_only}


async def resolve_template(_root: Any, info: Any, id: str,
                           version: str | None = None) -> dict[str, Any] | None:
    bs: App = info.context
    listed = await KnownTemplates(bs).get(id, version)
    return template_json(listed) if listed is not None else None


async def resolve_templates(_root: Any, info: Any,
                            filter: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    bs: App = info.context
    f = filter or {}
    listed = await KnownTemplates(bs).list(f.get("name"), type=f.get("type"),
                                           version=f.get("version"))
    return [template_json(t) for t in listed]


MAX_QUERY = 20_000
"""Longest query accepted (characters); template queries are a few hundred."""


def errors(*messages: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"errors": [{"message": m} for m in messages]}, status_code=status)


async def _request(request: Request) -> tuple[Any, Any, Any]:
    if request.method == "GET":
        q = request.query_params
        variables: Any = q.get("variables")
        if variables:
            try:
                variables = json.loads(variables)
            except (ValueError, RecursionError) as exc:
                raise GraphQLError(f"variables are not JSON: {exc}") from None
        return q.get("query"), variables, q.get("operationName")
    try:
        body = await read_json(request, default={})
    except BaseShiftError as exc:
        raise GraphQLError(exc.message) from None
    if not isinstance(body, dict):
        raise GraphQLError("the body must be a JSON object with a 'query'")
    return body.get("query"), body.get("variables"), body.get("operationName")


async def graphql_view(request: Request) -> Response:
    try:
        query, variables, operation = await _request(request)
    except GraphQLError as exc:
        return errors(exc.message)
    if not isinstance(query, str) or not query.strip():
        return errors("give a GraphQL query: POST {\"query\": \"...\"} or GET ?query=...")
    if variables is not None and not isinstance(variables, dict):
        return errors("'variables' must be a JSON object")
    if operation is not None and not isinstance(operation, str):
        return errors("'operationName' must be a string")
    if len(query) > MAX_QUERY:
        return errors(f"the query is longer than {MAX_QUERY} characters")
    try:
        result = await graphql(template_schema(), query, variable_values=variables,
                               operation_name=operation,
                               context_value=request.app.state.baseshift)
    except RecursionError:  # graphql-core parses recursively: absurd nesting lands here
        return errors("the query is nested too deeply")
    body = result.formatted
    return JSONResponse(body, status_code=200 if result.data is not None else 400)
