"""`baseshift backup` / `restore` for the PostgreSQL store: `pg_dump` / `pg_restore` of the
store's schema, in custom format. The restore runs in one transaction: a bad file changes
nothing."""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from baseshift.core.errors import ConfigError, InputError, StoreError

if TYPE_CHECKING:
    from .pg_connect import PgTarget

_TABLE_ENTRY = re.compile(r"\bTABLE (\S+) runs\b")
_TABLE_NAMES = re.compile(r"^\d+; \d+ \d+ TABLE \S+ (\w+) ", re.MULTILINE)
_SCHEMA_ENTRY = re.compile(r"^\d+; \d+ \d+ (SCHEMA|COMMENT) - ")
TABLES = ("meta", "runs", "jobs", "attempts", "job_queue", "retired_partitions", "documents",
          "users", "recovery_codes", "roles", "permissions", "role_permissions", "user_roles",
          "api_tokens", "api_token_roles", "refresh_tokens", "signing_keys", "audit_log",
          "audit_head", "data_keys", "run_holds", "run_tombstones", "audit_anchor",
          "worker_heartbeats", "log_lines")
"""Every table of the store's schema (migrations), dropped before a restore."""


def dump_database(target: PgTarget, file: Path) -> int:
    """Write a consistent dump of the schema to `file` (which must not exist)."""
    if file.exists():
        raise InputError(f"{file} already exists; choose a new file name",
                         details={"field": "target"})
    _run(["pg_dump", "--format=custom", "--no-owner", f"--schema={target.schema}",
          f"--file={file}", target.dsn], "pg_dump")
    return _count_runs(target)


def restore_database(target: PgTarget, file: Path) -> int:
    """Replace the store's tables with the dump's, in one transaction.

    The dump's SQL (from `pg_restore`, without its CREATE SCHEMA) runs through `psql
    --single-transaction` after dropping the store's tables: partitioned tables cannot be
    cleaned piecemeal the way `pg_restore --clean` tries, and a failure half-way must leave
    the old content in place."""
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
    with tempfile.TemporaryDirectory() as tmp:
        entries = Path(tmp) / "entries.list"
        entries.write_text("\n".join(line for line in listing.splitlines()
                                     if not _SCHEMA_ENTRY.search(line)))
        script = _run(["pg_restore", "--no-owner", f"--use-list={entries}", "--file=-",
                       str(file)], "pg_restore")
    tables = sorted({*TABLES, *_TABLE_NAMES.findall(listing)})  # templates' too
    drop = f'DROP TABLE IF EXISTS {", ".join(f"{target.schema}.{t}" for t in tables)} CASCADE;'
    _run(["psql", "--no-psqlrc", "--quiet", "--single-transaction", "--set=ON_ERROR_STOP=1",
          f"--dbname={target.dsn}"], "psql", stdin=f"{drop}\n{script}")
    return _count_runs(target)


def _run(command: list[str], tool: str, bad_input: str | None = None,
         stdin: str | None = None) -> str:
    if shutil.which(tool) is None:
        raise ConfigError(f"{tool} is not installed", hint="install the PostgreSQL client "
                          "tools (Debian: apt-get install postgresql-client)")
    done = subprocess.run(command, capture_output=True, text=True, check=False, input=stdin)
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

