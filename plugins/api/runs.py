"""The runs API: start, list, inspect, cancel, retry and re-run runs; finish waiting jobs;
stream a run's events (the views are in `runs_routes`, imported only when a server builds
its routes)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.hookspecs import hookimpl

from .permissions import SECRET_READ

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from baseshift.core.access import Permission


@hookimpl
def register_permissions() -> list[Permission]:
    return [SECRET_READ]


@hookimpl
def register_routes() -> list[BaseRoute]:
    from .runs_routes import routes

    return routes()
