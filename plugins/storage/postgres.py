"""The PostgreSQL state store plugin (`store = "postgres"`, needs `baseshift[postgres]`). The
store itself is in `pg_store`, imported only when chosen."""
from __future__ import annotations

from baseshift.core.hookspecs import hookimpl
from baseshift.core.registry import Backend

from ..extras import POSTGRES


@hookimpl
def register_backends() -> list[Backend]:
    """Offer `store = "postgres"`."""
    return [Backend("state", "postgres", "baseshift.plugins.storage.pg_store:PostgresStateStore",
                    requires=POSTGRES)]
