"""The SQLite state store plugin (`store = "sqlite"`, the default). The store itself is in
`sqlite_store`, imported only when chosen."""
from __future__ import annotations

from baseshift.core.hookspecs import hookimpl
from baseshift.core.registry import Backend


@hookimpl
def register_backends() -> list[Backend]:
    """Offer `store = "sqlite"`."""
    return [Backend("state", "sqlite", "baseshift.plugins.storage.sqlite_store:SQLiteStateStore")]
