"""The builtin `database` plugin: the database admin routes and their permissions. It asks
the state store for its `DatabaseAdmin` ability and never imports a storage driver."""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.access import Permission
from baseshift.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

DATABASE_READ = Permission("database:read", "see the database's performance and slowest "
                           "statements")
DATABASE_ADMIN = Permission("database:admin", "have the database explain a read-only query "
                            "(with analyze: run it in a read-only transaction rolled back)")


@hookimpl
def register_permissions() -> list[Permission]:
    return [DATABASE_READ, DATABASE_ADMIN]


@hookimpl
def register_routes() -> list[BaseRoute]:
    from .routes import routes

    return routes()
