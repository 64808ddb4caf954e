"""The checks a query must pass before a store explains it (`POST /api/v1/database/
optimize_query`): one read-only statement, by its words. The stores also run it in a
read-only transaction they roll back (PostgreSQL) or on a read-only connection (SQLite): a
word check alone cannot see every side effect, the database can."""
from __future__ import annotations

import re

from baseshift.core.errors import QueryRefused

MAX_QUERY = 20_000
"""Characters of the longest query explained."""
READ_STARTS = ("select", "with", "values", "table")
"""How a read-only statement may begin."""
WRITE_WORDS = frozenset((
    "insert", "update", "delete", "merge", "truncate", "drop", "alter", "create", "grant",
    "revoke", "copy", "vacuum", "analyze", "analyse", "reindex", "cluster", "lock", "call",
    "do", "execute", "prepare", "notify", "listen", "set", "reset", "comment", "security",
    "refresh", "into", "attach", "detach", "pragma", "replace", "begin", "commit", "rollback",
    "savepoint", "release", "explain",
))
"""Words no read-only statement we explain needs (`into`: SELECT INTO creates a table;
`update`/`share` after FOR: row locks). A column so named is refused too: rename it with
an alias-free spelling or quote it."""
SIDE_EFFECTS = re.compile(
    r"\b(pg_terminate_backend|pg_cancel_backend|pg_reload_conf|pg_rotate_logfile|"
    r"set_config|nextval|setval|pg_advisory\w*|pg_try_advisory\w*|lo_\w+|dblink\w*|"
    r"pg_read_\w+|pg_ls_\w+|pg_stat_reset\w*|pg_switch_wal|pg_create_\w+|pg_drop_\w+|"
    r"pg_notify|pg_sleep\w*|pg_logical_\w+|pg_replication_\w+|txid_current|"
    r"pg_current_xact_id)\s*\(", re.IGNORECASE)
"""Functions with an effect outside the transaction (or one that waits): never run with
`analyze`. Read-only transactions refuse most writes; these they would let through. A
first check by words, for a plain message; what decides is PostgreSQL's own reading of the
statement (pg_admin.py `_volatile_calls`), which no spelling hides a call from."""
_STRINGS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$(\w*)\$.*?\$\1\$", re.DOTALL)
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_WORDS = re.compile(r"[a-z_][a-z0-9_$]*")


def read_only_statement(query: object, analyze: bool = False) -> str:
    """`query` stripped of a trailing `;`, or QueryRefused (422) saying why it is refused:
    not text, empty, more than one statement, not a read (SELECT, WITH, VALUES, TABLE),
    a word of a write or a lock, or with `analyze` a function with side effects."""
    if not isinstance(query, str) or not query.strip():
        raise QueryRefused("'query' must be a non-empty string", details={"field": "query"})
    if len(query) > MAX_QUERY:
        raise QueryRefused(f"'query' is longer than {MAX_QUERY} characters",
                           details={"field": "query"})
    text = query.strip().rstrip(";").strip()
    if not text:
        raise _refused("it is empty")
    bare = _COMMENTS.sub(" ", _STRINGS.sub("''", text)).lower()
    if ";" in bare:
        raise _refused("it holds more than one statement")
    words = _WORDS.findall(bare)
    if not words or words[0] not in READ_STARTS:
        raise _refused("it is not a SELECT (or WITH, VALUES, TABLE) statement")
    writes = sorted(WRITE_WORDS.intersection(words))
    if writes or re.search(r"\bfor\s+(no\s+key\s+)?(update|share|key\s+share)\b", bare):
        named = ", ".join(w.upper() for w in writes) or "FOR UPDATE/SHARE"
        raise _refused(f"it is not read-only ({named})")
    if analyze and SIDE_EFFECTS.search(bare):
        raise _refused("with analyze it would call a function with side effects")
    return text


def _refused(why: str) -> QueryRefused:
    return QueryRefused(f"the query cannot be explained: {why}", details={"field": "query"},
                      hint="send one read-only SELECT; only its plan is computed, and "
                      "with analyze it runs in a read-only transaction rolled back")
