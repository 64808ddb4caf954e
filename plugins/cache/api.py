"""The cache over HTTP: `GET /api/v1/cache/stats`, `GET /api/v1/cache/keys` (`cache:read`)
and `POST /api/v1/cache/invalidate` (`cache:admin`, audited as `cache.invalidate`)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.hookspecs import hookimpl

from .permissions import CACHE_ADMIN, CACHE_READ

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from baseshift.core.access import Permission


@hookimpl
def register_permissions() -> list[Permission]:
    return [CACHE_READ, CACHE_ADMIN]


@hookimpl
def register_routes() -> list[BaseRoute]:
    from .routes import routes

    return routes()
