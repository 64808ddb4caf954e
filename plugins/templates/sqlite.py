"""The SQLite job template store plugin (`templates = "sqlite"`, the default). The store
itself is in `sqlite_store`, imported only when chosen."""
from __future__ import annotations

from baseshift.core.hookspecs import hookimpl
from baseshift.core.registry import Backend


@hookimpl
def register_backends() -> list[Backend]:
    """Offer `templates = "sqlite"`."""
    return [Backend("templates", "sqlite",
                    "baseshift.plugins.templates.sqlite_store:SQLiteTemplateStore")]
