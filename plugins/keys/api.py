"""The key API's routes: `POST /api/v1/keys/generate`, `/api/v1/encrypt`, `/api/v1/decrypt`."""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from starlette.routing import BaseRoute


@hookimpl
def register_routes() -> list[BaseRoute]:
    from .routes import routes

    return routes()
