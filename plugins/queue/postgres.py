"""The PostgreSQL attempt queue plugin (`queue = "postgres"`, needs `baseshift[postgres]`).
The queue itself is in `pg_queue`, imported only when chosen; its options are read under
`[plugins.queue_postgres]`."""
from __future__ import annotations

from baseshift.core.hookspecs import hookimpl
from baseshift.core.registry import Backend

from ..extras import POSTGRES


@hookimpl
def register_backends() -> list[Backend]:
    """Offer `queue = "postgres"`."""
    return [Backend("queue", "postgres", "baseshift.plugins.queue.pg_queue:PostgresAttemptQueue",
                    requires=POSTGRES)]
