"""Retention for the PostgreSQL store: retire whole monthly partitions older than a cutoff.

A month is retired when its partition of `runs` ends before the cutoff, every run in it
has finished and none is on legal hold. Optionally its runs, their jobs and their attempts
are first written to JSON Lines files (one object per row) in an archive folder. Then, in
one transaction, the jobs of its runs are deleted (their attempts go with them), the
partition is detached and dropped, and `retired_partitions` records what happened.
`attempts` partitions before the cutoff that are left empty are dropped too. Dropping a
partition is instant, whatever its size; deleting the same rows one by one would take hours
on a large installation and bloat the tables.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from baseshift.core.records import Retired

from .pg_connect import PgTarget
from .pg_schema import month_of_partition, partitions


def retire_before(target: PgTarget, cutoff: float, archive: Path | None,
                  dry_run: bool) -> list[Retired]:
    """Retire every monthly partition that ends at or before `cutoff` (epoch seconds)."""
    done: list[Retired] = []
    with target.connect(autocommit=True) as conn:
        names = partitions(conn)
        for name in names:
            month = month_of_partition(name)
            if name.startswith("runs_") and month is not None and month.end <= cutoff:
                done.append(_retire_runs(conn, name, month.start, month.end, archive, dry_run))
        for name in partitions(conn):
            month = month_of_partition(name)
            if name.startswith("attempts_") and month is not None and month.end <= cutoff:
                left = _count(conn, f"SELECT count(*) FROM {name}")
                if left == 0 and not dry_run:
                    with conn.transaction():
                        conn.execute(f"ALTER TABLE attempts DETACH PARTITION {name}".encode())
                        conn.execute(f"DROP TABLE {name}".encode())
    return done


def _retire_runs(conn: psycopg.Connection[Any], name: str, start: float, end: float,
                 archive: Path | None, dry_run: bool) -> Retired:
    runs = _count(conn, f"SELECT count(*) FROM {name}")
    unfinished = _count(conn, f"SELECT count(*) FROM {name} "
                        "WHERE state IN ('INITIALIZED', 'RUNNING')")
    if unfinished:
        return Retired(name, runs, f"kept: {unfinished} unfinished run(s)")
    held = _count(conn, f"SELECT count(*) FROM {name} "
                  "WHERE id IN (SELECT run_id FROM run_holds)")
    if held:
        return Retired(name, runs, f"kept: {held} run(s) on legal hold")
    if dry_run:
        return Retired(name, runs, "would archive and drop" if archive else "would drop")
    written = _archive(conn, name, archive) if archive is not None else None
    with conn.transaction():
        conn.execute(f"DELETE FROM jobs WHERE run_id IN (SELECT id FROM {name})".encode())
        conn.execute(f"ALTER TABLE runs DETACH PARTITION {name}".encode())
        conn.execute(f"DROP TABLE {name}".encode())
        conn.execute("INSERT INTO retired_partitions (name, parent, range_start, range_end, "
                     "rows, archive) VALUES (%s, 'runs', %s, %s, %s, %s) "
                     "ON CONFLICT (name) DO NOTHING", (name, start, end, runs, written))
    return Retired(name, runs, "archived and dropped" if written else "dropped", written)


def _archive(conn: psycopg.Connection[Any], name: str, folder: Path) -> str:
    """Write the partition's runs, jobs and attempts as JSON Lines; returns the folder."""
    target = folder / name
    target.mkdir(parents=True, exist_ok=True)
    queries = {
        "runs": f"SELECT row_to_json(r)::text FROM {name} r ORDER BY created_at, id",
        "jobs": f"SELECT row_to_json(j)::text FROM jobs j WHERE run_id IN "
                f"(SELECT id FROM {name}) ORDER BY run_id, seq",
        "attempts": f"SELECT row_to_json(a)::text FROM attempts a WHERE run_id IN "
                    f"(SELECT id FROM {name}) ORDER BY run_id, job_key, number",
    }
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        for kind, query in queries.items():
            with (target / f"{kind}.jsonl").open("w", encoding="utf-8") as out, \
                    conn.cursor(name=f"archive_{kind}") as cur:
                cur.execute(query.encode())
                for (line,) in cur:
                    out.write(line + "\n")
    return str(target)


def _count(conn: psycopg.Connection[Any], query: str) -> int:
    row = conn.execute(query.encode()).fetchone()
    return int(row[0]) if row else 0
