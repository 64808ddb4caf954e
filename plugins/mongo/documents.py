"""The MongoDB connection shared by the document backends: one client per application,
checked at start, with pymongo's blocking calls moved off the event loop.

pymongo is imported only when a MongoDB backend is chosen, so other installations never pay
for it.
"""
from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from baseshift.core.config import masked
from baseshift.core.errors import ConfigError, StoreError
from baseshift.core.settings import Settings

from ..extras import MONGO

if TYPE_CHECKING:
    from pymongo import MongoClient
    from pymongo.collection import Collection
    from pymongo.database import Database

T = TypeVar("T")
Document = dict[str, Any]

DEFAULT_DATABASE = "baseshift"
"""Used when `mongo_url` names no database (`mongodb://host:27017/` rather than `/prod`)."""
SELECTION_TIMEOUT_MS = 5000
"""How long a call waits for a reachable server; a `serverSelectionTimeoutMS` in the URL
wins. Short, so an unreachable server is one clear error at start rather than a hang."""
_DRIVER_DETAIL = re.compile(r" \(configured timeouts|, Timeout: ")
"""Where pymongo's connection errors turn into timeouts and topology dumps."""
URL_HINT = "like mongodb://user:password@127.0.0.1:27017/baseshift"


def mongo_url(settings: Settings, key: str) -> str:
    """`settings.mongo_url`, required because `key` (templates, results) chose MongoDB (which
    also needs the `pymongo` package: a ConfigError says how to install it)."""
    MONGO.check(f"{key} = \"mongo\"")
    if not settings.mongo_url:
        raise ConfigError(f"Config '{key}' is 'mongo' but 'mongo_url' is not set.",
                          hint=f"set mongo_url (or BASESHIFT_MONGO_URL), {URL_HINT}")
    return settings.mongo_url


class MongoConnection:
    """One `MongoClient` and its database. `open` connects and pings; `run` calls a blocking
    function in a thread and turns driver errors into `StoreError`.

    Args:
        url: the `mongodb://` or `mongodb+srv://` URL.
        database: the database name; by default the URL's, else `baseshift`.
        client: an already built client (tests pass a mongomock one).
    """

    def __init__(self, url: str, *, database: str | None = None,
                 client: MongoClient[Document] | None = None) -> None:
        self.url = url
        self._database_name = database
        self._client = client
        self._db: Database[Document] | None = None

    @property
    def where(self) -> str:
        """The URL with its password masked, for messages."""
        return str(masked(self.url))

    @property
    def db(self) -> Database[Document]:
        if self._db is None:
            raise RuntimeError(f"MongoDB connection {self.where} is not open")
        return self._db

    def collection(self, name: str) -> Collection[Document]:
        return self.db[name]

    async def open(self) -> None:
        """Connect and ping, so a bad URL or an unreachable server fails the start."""
        if self._db is None:
            self._db = await asyncio.to_thread(self._connect)

    def _connect(self) -> Database[Document]:
        client = self._client if self._client is not None else self._new_client()
        try:
            client.admin.command("ping")
            db = client.get_default_database(default=DEFAULT_DATABASE) \
                if self._database_name is None else client[self._database_name]
        except Exception as exc:
            client.close()
            raise self._failure("connecting", exc) from None
        self._client = client
        return db

    def _new_client(self) -> MongoClient[Document]:
        from pymongo import MongoClient
        from pymongo.errors import ConfigurationError

        options: dict[str, Any] = {"tz_aware": True}
        if "serverselectiontimeoutms" not in self.url.lower():
            options["serverSelectionTimeoutMS"] = SELECTION_TIMEOUT_MS
        try:
            return MongoClient(self.url, **options)
        except (ConfigurationError, ValueError, TypeError) as exc:
            raise ConfigError(f"Config 'mongo_url' has value {self.where!r}: "
                              f"{masked(str(exc))}", hint=URL_HINT) from None

    async def close(self) -> None:
        client, self._client, self._db = self._client, None, None
        if client is not None:
            await asyncio.to_thread(client.close)

    async def run(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a worker thread; a driver error becomes a `StoreError` saying
        `what` failed (the caller's own errors pass through)."""
        from pymongo.errors import PyMongoError

        try:
            return await asyncio.to_thread(fn, *args)
        except PyMongoError as exc:
            raise self._failure(what, exc) from None

    def _failure(self, what: str, exc: Exception) -> Exception:
        from pymongo.errors import ConnectionFailure, OperationFailure

        reason = masked(_DRIVER_DETAIL.split(str(exc))[0])
        if isinstance(exc, OperationFailure) and exc.code in (13, 18):  # unauthorized, auth
            return ConfigError(f"MongoDB at {self.where} refused {what}: {reason}",
                               hint="check the user and password in mongo_url")
        if isinstance(exc, ConnectionFailure):
            return StoreError(f"MongoDB at {self.where} is unreachable ({what}): {reason}",
                              hint="check mongo_url and that the server is running")
        return StoreError(f"MongoDB at {self.where}: {what} failed: {reason}")


@runtime_checkable
class SharesMongoConnection(Protocol):
    """A backend keeping its documents in MongoDB, whose connection the application's other
    MongoDB backends use too (one client per application)."""

    def mongo_connection(self) -> MongoConnection: ...
