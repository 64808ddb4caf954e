"""The webhook trigger: `POST /api/v1/hooks/{workflow}` starts a run (the views are in
`webhook_routes`, imported only when a server builds its routes)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from starlette.routing import BaseRoute


@hookimpl
def register_routes() -> list[BaseRoute]:
    from .webhook_routes import routes

    return routes()
