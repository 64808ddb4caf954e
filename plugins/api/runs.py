"""The runs API: start, list, inspect, cancel, retry and re-run runs; finish waiting jobs;
stream a run's events (the views are in `runs_routes`, imported only when a server builds
its routes)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.access import Permission
from baseshift.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

SECRET_READ = Permission("secret:read", "see the clear values of a run's secret inputs and "
                         "outputs (GET /api/v1/workflows/ID?reveal=secrets)", scoped=True)


@hookimpl
def register_permissions() -> list[Permission]:
    return [SECRET_READ]


@hookimpl
def register_routes() -> list[BaseRoute]:
    from .runs_routes import routes

    return routes()
