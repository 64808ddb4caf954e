"""The runs API: start, list, inspect, cancel, retry and re-run runs; finish waiting jobs;
stream a run's events (the views are in `runs_routes`, imported only when a server builds
its routes)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from starlette.routing import BaseRoute


@hookimpl
def register_routes() -> list[BaseRoute]:
    from .runs_routes import routes

    return routes()
