"""The PostgreSQL job template store plugin (`templates = "postgres"`, needs
`baseshift[postgres]`). The store itself is in `pg_store`, imported only when
chosen."""
from __future__ import annotations

from baseshift.core.hookspecs import hookimpl
from baseshift.core.registry import Backend

from ..extras import POSTGRES


@hookimpl
def register_backends() -> list[Backend]:
    """Offer `templates = "postgres"`."""
    return [Backend("templates", "postgres",
                    "baseshift.plugins.templates.pg_store:PostgresTemplateStore",
                    requires=POSTGRES)]
