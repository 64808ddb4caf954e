"""The GraphQL API of the job template store (`/graphql`, see `graphql_api`). graphql-core is
an extra (`baseshift[graphql]`): without it the route answers 501 saying how to add it."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from baseshift.core.hookspecs import hookimpl

from ..extras import GRAPHQL

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute


async def not_installed(request: Request) -> Response:
    """`/graphql` when graphql-core is not installed: GraphQL's own error shape, status 501."""
    from baseshift.web.responses import JSONResponse

    message = f"GraphQL (graphql-core) is not installed on this server: {GRAPHQL.install}"
    return JSONResponse({"errors": [{"message": message}]}, status_code=501)


def _view() -> Callable[[Request], Awaitable[Response]]:
    if GRAPHQL.missing():
        return not_installed
    from .graphql_api import graphql_view

    return graphql_view


@hookimpl
def register_routes() -> list[BaseRoute]:
    from starlette.routing import Route

    from baseshift.core.access import TEMPLATES_READ
    from baseshift.web.access import requires

    # the schema only reads templates: every field needs templates:read, introspection too
    view = requires(TEMPLATES_READ)(_view())
    return [Route("/graphql", view, methods=["GET", "POST"], name="graphql_templates:graphql")]
