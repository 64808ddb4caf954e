"""Backup and restore of the SQLite database with SQLite's online backup API.

A backup is a consistent copy taken while the server may be writing (the API copies pages
under a read transaction, WAL content included); a restore replaces the database's content
with a backup's in one step. Templates live in the same file, so they travel with the runs.
"""
from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from baseshift.core.errors import ConfigError, InputError

REQUIRED_TABLES = frozenset({"runs", "jobs", "attempts"})


def backup_file(database: Path, target: Path) -> int:
    """Copy `database` to `target` (which must not exist); returns the number of runs."""
    if not database.is_file():
        raise ConfigError(f"there is no database to back up at {database}",
                          hint="check --data-dir")
    if target.exists():
        raise InputError(f"{target} already exists; choose a new file name",
                         details={"field": "target"})
    target.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(database)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
        return _runs(dst, target)


def restore_file(backup: Path, database: Path) -> int:
    """Replace `database`'s content with `backup`'s (checked first); returns the run count."""
    if not backup.is_file():
        raise InputError(f"no backup file at {backup}", details={"field": "backup"})
    with closing(sqlite3.connect(f"file:{backup}?mode=ro", uri=True)) as src:
        count = _runs(src, backup)
        database.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(database)) as dst:
            src.backup(dst)
    return count


def _runs(conn: sqlite3.Connection, path: Path) -> int:
    """Check that `path` is a sound Base Shift database; the number of runs it holds."""
    try:
        if conn.execute("PRAGMA quick_check").fetchone() != ("ok",):
            raise InputError(f"{path} is damaged (SQLite quick_check failed)")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master "
                                             "WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{path} is not a SQLite database: {exc}") from None
    missing = REQUIRED_TABLES - tables
    if missing:
        raise InputError(f"{path} is not a Base Shift database (no {', '.join(sorted(missing))})")
    count: int = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
    return count
