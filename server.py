"""The process entry point: the Base Shift application and its ASGI server app.

`hypercorn server:app` (or `baseshift serve`) serves `app`, built on first access from
BASESHIFT_* settings; `create_baseshift()` builds the application object the CLI uses.
"""
from __future__ import annotations

from typing import Any

from baseshift.core.app import BaseShift
from baseshift.core.settings import Settings


def create_baseshift(settings: Settings | None = None) -> BaseShift:
    """The application as configured by the environment (or by `settings`)."""
    return BaseShift(settings or Settings.from_env())


def __getattr__(name: str) -> Any:
    """`app` is built lazily, so importing this module costs nothing until it is served."""
    if name == "app":
        from baseshift.web.app import create_app

        app = create_app()
        globals()["app"] = app
        return app
    raise AttributeError(name)
