"""The analytics API: run and workflow performance, job success rates and durations (the views
are in `analytics_routes`, imported only when a server builds its routes).

The views ask the state store for `RunAnalytics`; a server whose store lacks them does not
start (a CLI command, which serves no API, does not care)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.hookspecs import hookimpl
from baseshift.core.stash import SERVING

from .analytics_store import analytics

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from baseshift.core.appface import App


@hookimpl
def startup(baseshift: App) -> None:
    """In a server, check that the store answers analytics queries before anything runs."""
    if baseshift.stash.get(SERVING):
        analytics(baseshift.store)


@hookimpl
def register_routes() -> list[BaseRoute]:
    from .analytics_routes import routes

    return routes()
