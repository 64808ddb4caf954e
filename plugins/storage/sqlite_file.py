"""The SQLite database file the embedded stores share (runs and templates in one file), the
settings every connection to it starts with, and the engine both stores open it through."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event
from sqlalchemy.pool import StaticPool

DB_FILENAME = "baseshift.db"

# WAL + synchronous=NORMAL: a commit is in the WAL file (the OS page cache) when it returns,
# which survives the process being killed; only a power loss can drop the last commits.
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
    # Erased and expired data must not linger in free pages: deletes overwrite it.
    "PRAGMA secure_delete=ON",
)

# The execution option naming the statement that opens a transaction (see `on_begin`).
BEGIN_OPTION = "baseshift_sqlite_begin"


def is_memory(url: URL) -> bool:
    """Whether `url` names an in-memory database (`sqlite://`), which has no file."""
    return url.database in (None, "", ":memory:")


def on_connect(dbapi_connection: Any, _record: Any) -> None:
    """Take transaction control from the sqlite3 module (which never BEGINs before a SELECT),
    so `on_begin` decides: reads then see one consistent snapshot."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def on_begin(conn: Connection) -> None:
    """Open the transaction with the engine's BEGIN_OPTION statement, plain BEGIN if unset."""
    conn.exec_driver_sql(conn.get_execution_options().get(BEGIN_OPTION, "BEGIN"))


def sqlite_engine(url: URL, **options: Any) -> Engine:
    """An engine on `url` with our pragmas and BEGIN; the file's folder is created, and an
    in-memory database is one connection shared by every thread (else each would see its own
    empty database)."""
    if is_memory(url):
        options |= {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    else:
        Path(str(url.database)).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    engine = create_engine(url, **options)
    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    return engine


def immediate(engine: Engine) -> Engine:
    """`engine` opening every transaction with BEGIN IMMEDIATE: it takes the write lock up
    front, waiting out busy_timeout, instead of failing when two processes that both read
    first then try to write."""
    return engine.execution_options(**{BEGIN_OPTION: "BEGIN IMMEDIATE"})


def database_key(url: URL) -> str | None:
    """Names the database file, to tell whether two stores share it (None: in memory, which
    no other store shares)."""
    return None if is_memory(url) else f"sqlite:{Path(str(url.database)).resolve()}"
