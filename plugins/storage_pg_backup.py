"""`baseshift backup` / `restore` for the PostgreSQL store: `pg_dump` / `pg_restore` of the
store's schema, in custom format. The restore runs in one transaction: a bad file changes
nothing."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from baseshift.core.errors import ConfigError, InputError, StoreError

if TYPE_CHECKING:
    from .storage_pg_connect import PgTarget

_TABLE_ENTRY = re.compile(r"\bTABLE (\S+) runs\b")


def dump_database(target: PgTarget, file: Path) -> int:
    """Write a consistent dump of the schema to `file` (which must not exist)."""
    if file.exists():
        raise InputError(f"{file} already exists; choose a new file name",
                         details={"field": "target"})
    _run(["pg_dump", "--format=custom", "--no-owner", f"--schema={target.schema}",
          f"--file={file}", target.dsn], "pg_dump")
    return _count_runs(target)


def restore_database(target: PgTarget, file: Path) -> int:
    """Replace the schema's tables with the dump's, in one transaction."""
    if not file.is_file():
        raise ConfigError(f"no such backup file: {file}")
    listing = _run(["pg_restore", "--list", str(file)], "pg_restore",
                   f"{file} is not a Base Shift PostgreSQL backup")
    schemas = set(_TABLE_ENTRY.findall(listing))
    if not schemas:
        raise ConfigError(f"{file} is not a Base Shift PostgreSQL backup (it has no runs table)")
    if target.schema not in schemas:
        raise ConfigError(f"{file} holds schema {', '.join(sorted(schemas))}; database_url "
                          f"names schema {target.schema}",
                          hint="restore into the schema the backup was made from "
                          "(?schema=NAME in database_url)")
    _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
          f"--dbname={target.dsn}", str(file)], "pg_restore")
    return _count_runs(target)


def _run(command: list[str], tool: str, bad_input: str | None = None) -> str:
    if shutil.which(tool) is None:
        raise ConfigError(f"{tool} is not installed", hint="install the PostgreSQL client "
                          "tools (Debian: apt-get install postgresql-client)")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = " ".join(done.stderr.split())[:500]
        if bad_input is not None:
            raise ConfigError(f"{bad_input}: {detail}")
        raise StoreError(f"{tool} failed: {detail}")
    return done.stdout


def _count_runs(target: PgTarget) -> int:
    with target.connect() as conn:
        row = conn.execute("SELECT count(*) FROM runs").fetchone()
    return int(row[0]) if row else 0

