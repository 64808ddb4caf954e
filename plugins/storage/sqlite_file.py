"""The SQLite database file the embedded stores share (runs and templates in one file) and
the settings every connection to it starts with."""
from __future__ import annotations

DB_FILENAME = "baseshift.db"

# WAL + synchronous=NORMAL: a commit is in the WAL file (the OS page cache) when it returns,
# which survives the process being killed; only a power loss can drop the last commits.
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
)
