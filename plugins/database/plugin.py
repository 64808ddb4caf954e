"""The builtin `database` plugin: the database admin routes and their permissions. It asks
the state store for its `DatabaseAdmin` ability and never imports a storage driver."""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.access import Permission
from baseshift.core.hookspecs import hookimpl

from .permissions import DATABASE_ADMIN, DATABASE_READ

if TYPE_CHECKING:
    from starlette.routing import BaseRoute


@hookimpl
def register_permissions() -> list[Permission]:
    return [DATABASE_READ, DATABASE_ADMIN]


@hookimpl
def register_routes() -> list[BaseRoute]:
    from .routes import routes

    return routes()
