"""The process entry point: the Base Shift application and its ASGI server app.

`hypercorn server:app` (or `baseshift serve`) serves `app`, which builds the real
application from BASESHIFT_* settings on its first ASGI event; `create_baseshift()` builds the
application object the CLI uses.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from baseshift.core.app.application import BaseShift
from baseshift.core.settings import Settings

if TYPE_CHECKING:
    from starlette.applications import Starlette


def create_baseshift(settings: Settings | None = None) -> BaseShift:
    """The application as configured by the environment (or by `settings`)."""
    return BaseShift(settings or Settings.from_env())


class LazyApp:
    """An ASGI app that builds the server on first use, so importing this module is cheap
    and reads the environment only when the server actually starts."""

    def __init__(self) -> None:
        self._app: Starlette | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from baseshift.web.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


app = LazyApp()
