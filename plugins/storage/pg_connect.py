"""Where the PostgreSQL backends connect: `database_url` parsed once, connections opened with
one clear error when the server is unreachable or refuses us."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from baseshift.core.config import masked
from baseshift.core.errors import ConfigError, StoreError
from baseshift.core.settings import Settings

CONNECT_TIMEOUT = 5
"""Seconds to wait for the server before `open()` gives up with an error."""
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
              "keepalives_count": 3}
"""TCP keepalives on every connection, unless the URL sets them: a server or network that
goes away without closing the connection (a host power loss, a dropped route) is noticed
within about a minute instead of the system's default two hours. It matters most for the
LISTEN connections, which otherwise wait in silence for notifications that never come."""


@dataclass(frozen=True, slots=True)
class PgTarget:
    """A PostgreSQL database and the schema Base Shift keeps its tables in."""

    url: str
    dsn: str
    schema: str

    @classmethod
    def parse(cls, url: str) -> PgTarget:
        """`postgresql://user:pw@host:port/db?schema=NAME&sslmode=...`; `schema` (default
        `public`) is ours, every other query parameter goes to libpq."""
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ConfigError(f"database_url {masked(url)!r} is not a PostgreSQL URL",
                              hint="write postgresql://user@host:5432/database")
        query = dict(parse_qsl(parts.query))
        schema = query.pop("schema", "public")
        if not schema.replace("_", "").isalnum() or schema[0].isdigit():
            raise ConfigError(f"database_url: schema {schema!r} is not a plain identifier",
                              hint="use letters, digits and _ (not first a digit)")
        dsn = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(query)))
        return cls(url, dsn, schema)

    @property
    def key(self) -> str:
        """Names the database and schema, to tell whether two stores share them (never
        shown: it holds the password)."""
        return f"{self.dsn}#{self.schema}"

    @classmethod
    def required(cls, settings: Settings) -> PgTarget:
        if not settings.database_url:
            raise ConfigError("the postgres backends need database_url",
                              hint="set BASESHIFT_DATABASE_URL=postgresql://user@host:5432/db "
                              "or database_url in baseshift.toml")
        return cls.parse(settings.database_url)

    def __str__(self) -> str:
        shown = masked(self.dsn)
        return shown if self.schema == "public" else f"{shown} (schema {self.schema})"

    def connect_kwargs(self, autocommit: bool) -> dict[str, Any]:
        """What every connection of ours is opened with besides the DSN (a pool's too)."""
        given = conninfo_to_dict(self.dsn)
        return {"autocommit": autocommit, "connect_timeout": CONNECT_TIMEOUT,
                "options": f"-c search_path={self.schema}",
                **{k: v for k, v in KEEPALIVES.items() if k not in given}}

    def connect(self, create_schema: bool = False,
                autocommit: bool = False) -> psycopg.Connection[Any]:
        """A blocking connection (schema changes, SQLAlchemy's pool, tools)."""
        try:
            if create_schema and self.schema != "public":
                with psycopg.connect(self.dsn, autocommit=True,
                                     connect_timeout=CONNECT_TIMEOUT) as conn:
                    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'.encode())
            return psycopg.connect(self.dsn, **self.connect_kwargs(autocommit))
        except psycopg.OperationalError as exc:
            raise self.unreachable(exc) from None

    async def connect_async(self, autocommit: bool = False) -> psycopg.AsyncConnection[Any]:
        try:
            return await psycopg.AsyncConnection.connect(self.dsn,
                                                         **self.connect_kwargs(autocommit))
        except psycopg.OperationalError as exc:
            raise self.unreachable(exc) from None

    def unreachable(self, exc: Exception) -> ConfigError:
        """The error for a server that cannot be reached (or refused us), saying why."""
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return ConfigError(f"cannot connect to PostgreSQL at {masked(self.dsn)}: {reason}",
                           hint="check database_url (BASESHIFT_DATABASE_URL) and that the "
                           "server is running")


class PgSession:
    """One autocommit connection for short statements from several tasks, one at a time;
    reconnects on the next call after the connection broke (a server restart), so a worker
    or queue outlives a database blip. Errors become StoreError."""

    def __init__(self, target: PgTarget, what: str) -> None:
        self.target = target
        self.what = what
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()

    async def connect(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await self.target.connect_async(autocommit=True)
        return self._conn

    async def execute(self, query: str, params: Any = ()) -> list[tuple[Any, ...]]:
        async with self._lock:
            try:
                conn = await self.connect()
                cur = await conn.execute(query.encode(), params)
                return await cur.fetchall() if cur.description else []
            except psycopg.Error as exc:
                raise StoreError(f"{self.what} failed: {' '.join(str(exc).split())}") from exc
            except ConfigError as exc:  # could not reconnect
                raise StoreError(f"{self.what} failed: {exc.message}") from exc

    async def renew(self) -> None:
        """Start the next call on a new connection. After an outage the old one is most
        likely dead, and only a failed call would tell: one that matters, such as the
        catch-up after a LISTEN connection came back."""
        async with self._lock:
            await self.close()

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
