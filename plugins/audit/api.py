"""`GET /api/v1/audit-logs`: the audit trail, filtered and paged (`audit:read`)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from baseshift.core.appface import App


@hookimpl
def register_routes() -> list[BaseRoute]:
    from .routes import routes

    return routes()


@hookimpl
def configure(baseshift: App) -> None:
    from pathlib import Path

    from baseshift.web.render import add_templates

    add_templates(baseshift, Path(__file__).parent / "templates")
