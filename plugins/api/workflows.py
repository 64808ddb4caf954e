"""The workflow definitions API (the loaded `.bsw` files) and the OpenAPI document (the views
are in `workflows_routes`, imported only when a server builds its routes)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from starlette.routing import BaseRoute


@hookimpl
def register_routes() -> list[BaseRoute]:
    from .workflows_routes import routes

    return routes()
