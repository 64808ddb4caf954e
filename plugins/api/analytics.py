"""The analytics API: run and workflow performance, job success rates and durations (the views
are in `analytics_routes`, imported only when a server builds its routes)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from starlette.routing import BaseRoute


@hookimpl
def register_routes() -> list[BaseRoute]:
    from .analytics_routes import routes

    return routes()
