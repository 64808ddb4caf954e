"""405 answers whose `Allow` lists every method a resource is served with, whichever route
serves it.

Plugins register one route per method (`GET /x` and `POST /x` are two routes), and
Starlette's router answers 405 from the first route whose path matches, naming only that
route's methods. The resource is that route's path template (what the OpenAPI document
lists); `Allow` is the union over every route registered with that template.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Scope


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> set[str]:
    """The methods of the routes registered with the path template of the first route that
    matches the request's path (the one the router answers from), under any mount."""
    matching = list(_matching(routes, scope, ""))
    if not matching:
        return set()
    resource = matching[0][0]
    return {method for template, methods in matching if template == resource
            for method in methods}


def _matching(routes: Iterable[BaseRoute], scope: Scope,
              prefix: str) -> Iterator[tuple[str, frozenset[str]]]:
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Route) and route.methods:
            yield prefix + route.path, frozenset(route.methods)
        elif isinstance(route, Mount):
            yield from _matching(route.routes, {**scope, **child}, prefix + route.path)
