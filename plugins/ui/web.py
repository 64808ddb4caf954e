"""The web UI: server-rendered pages (Jinja2 and htmx) for workflows, runs and templates (the
views are in `routes`, imported only when a server builds its routes)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from baseshift.core.appface import App


@hookimpl
def register_routes(baseshift: App) -> list[BaseRoute]:
    from .routes import routes

    return routes(baseshift)
