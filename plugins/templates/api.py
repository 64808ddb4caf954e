"""The job template store over REST: `/api/v1/templates` (the views are in
`api_routes`, imported only when a server builds its routes)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from starlette.routing import BaseRoute


@hookimpl
def register_routes() -> list[BaseRoute]:
    from .api_routes import routes

    return routes()
