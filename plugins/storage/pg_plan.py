"""Simple advice from a PostgreSQL plan (`EXPLAIN (FORMAT JSON)`): sequential scans of big
tables, the columns their filters test (candidates for an index), sorts that spilled to
disk. Heuristics for a person to weigh, never applied by themselves."""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import psycopg

BIG_TABLE_ROWS = 1000
"""Estimated rows from which a sequential scan is worth a word."""
_COLUMN_TESTS = re.compile(r"\(?\b([a-z_][a-z0-9_]*)\)?(?:::\w+)?\s*(?:=|<>|<=|>=|<|>|~~\*?|"
                           r"\bis\b|\bin\b|= any)", re.IGNORECASE)


def nodes(plan: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every node of a plan, its root first."""
    stack = [plan.get("Plan", plan)]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.get("Plans", [])))


def filtered_columns(condition: str) -> list[str]:
    """The column names a filter compares, in order, once each."""
    seen: dict[str, None] = {}
    for name in _COLUMN_TESTS.findall(condition):
        if name.lower() not in ("and", "or", "not", "null", "true", "false"):
            seen.setdefault(name, None)
    return list(seen)


async def plan_advice(conn: psycopg.AsyncConnection[Any], plan: Mapping[str, Any]) -> list[str]:
    """Suggestions for `plan`, asking the database for the estimated size of the tables
    scanned sequentially."""
    advice = []
    for node in nodes(plan):
        kind = node.get("Node Type")
        if kind == "Seq Scan" and node.get("Relation Name"):
            table = str(node["Relation Name"])
            cur = await conn.execute(
                b"SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                (table,))
            row = await cur.fetchone()
            rows = int(row[0]) if row and row[0] is not None else -1
            if rows < BIG_TABLE_ROWS:
                continue
            tip = f"sequential scan of {table} (about {rows} rows)"
            columns = filtered_columns(str(node.get("Filter", "")))
            if columns:
                tip += (f" filtered on {', '.join(columns)}: an index on "
                        f"{table} ({', '.join(columns)}) may let it read fewer rows")
            else:
                tip += ": it reads the whole table; add a WHERE clause or a LIMIT if "
                tip += "you need fewer rows"
            advice.append(tip)
        elif kind == "Sort" and "Disk" in str(node.get("Sort Space Type", "")):
            advice.append(f"a sort spilled to disk ({node.get('Sort Space Used')} kB): an "
                          "index on the ORDER BY columns or a larger work_mem avoids it")
    return advice
