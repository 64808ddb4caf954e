"""The PostgreSQL state store's connection pool (psycopg_pool) and its options, the
`[plugins.storage_postgres]` table of baseshift.toml:

    [plugins.storage_postgres]
    pool_min_size = 1      # connections kept open
    pool_max_size = 4      # at most this many at once
    pool_timeout = 30.0    # seconds a read waits for a free connection, then fails
    pool_max_idle = 600.0  # seconds an idle connection above pool_min_size is kept
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from baseshift.core.config import option
from baseshift.core.errors import ConfigError
from baseshift.core.settings import Settings

TABLE = "storage_postgres"
"""`Settings.extra[TABLE]`, the `[plugins.storage_postgres]` table."""


@dataclass(frozen=True, slots=True)
class PoolOptions:
    """The pool's sizes and times (psycopg_pool's `min_size`, `max_size`, `timeout`,
    `max_idle`)."""

    min_size: int = 1
    max_size: int = 4
    timeout: float = 30.0
    max_idle: float = 600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> PoolOptions:
        """The options of `[plugins.storage_postgres]`, each checked (ConfigError naming the
        key): positive numbers, `pool_min_size` not above `pool_max_size`."""
        d = cls()
        found = cls(option(settings, TABLE, "pool_min_size", d.min_size),
                    option(settings, TABLE, "pool_max_size", d.max_size),
                    option(settings, TABLE, "pool_timeout", d.timeout),
                    option(settings, TABLE, "pool_max_idle", d.max_idle))
        if found.min_size > found.max_size:
            raise ConfigError(f"Config 'plugins.{TABLE}.pool_min_size' has value "
                              f"{found.min_size}, above pool_max_size ({found.max_size})",
                              hint="the pool keeps pool_min_size connections of at most "
                              "pool_max_size")
        return found

    def pool(self, dsn: str, kwargs: dict[str, Any]) -> AsyncConnectionPool[Any]:
        """A pool (not yet open) of connections to `dsn` made with `kwargs`; each is checked
        when taken, so one the server ended while idle (a restart, an idle-connection
        killer) is replaced instead of failing a call."""
        return AsyncConnectionPool(dsn, kwargs=kwargs, min_size=self.min_size,
                                   max_size=self.max_size, timeout=self.timeout,
                                   max_idle=self.max_idle, open=False, name="baseshift-store",
                                   connection_class=AsyncConnection[Any],
                                   check=AsyncConnectionPool.check_connection)


DEFAULT_POOL = PoolOptions()
"""The pool of a store given no options."""


def pool_stats(pool: AsyncConnectionPool[Any] | None) -> dict[str, object]:
    """What the admin API shows of the pool: its sizes, the connections free, the requests
    waiting, served and failed, and psycopg_pool's counters as they are (`stats`)."""
    if pool is None:
        return {"open": False}
    stats = pool.get_stats()
    return {"open": not pool.closed, "min_size": pool.min_size, "max_size": pool.max_size,
            "size": stats.get("pool_size", 0), "available": stats.get("pool_available", 0),
            "waiting": stats.get("requests_waiting", 0), "requests": stats.get("requests_num", 0),
            "errors": stats.get("requests_errors", 0) + stats.get("connections_errors", 0),
            "stats": dict(stats)}
