"""A log query (core/logquery.py) as a SQL condition, for the SQLite and PostgreSQL log
stores alike: SQLAlchemy Core over bound parameters only, never the query's text in SQL.

`LogQuery.matches` is the meaning kept: a term on a missing field (NULL) is false, also
under NOT (each term tests IS NOT NULL first, so no NULL reaches NOT); `*` is the only
wildcard, so `%`, `_` and the escape character in a value are escaped (LIKE) and `[`, `?`
bracketed (GLOB); a caseless term compares `lower()` of both sides; a case-sensitive one
with a wildcard is GLOB in SQLite (whose LIKE ignores ASCII case) and LIKE in PostgreSQL.
Case folding is the database's `lower()`: ASCII letters in SQLite, and in PostgreSQL what
the database's locale folds; `matches` folds all of Unicode, so queries that differ only in
the case of a non-ASCII letter may answer differently across stores.
"""
from __future__ import annotations

from sqlalchemy import ColumnElement, Table, and_, false, func, literal, not_, or_, true

from baseshift.core.logquery import And, LogQuery, Node, Not, Or, Term

ESCAPE = "\\"


def log_condition(query: LogQuery, table: Table, *, glob: bool) -> ColumnElement[bool]:
    """The WHERE condition of `query` on `table` (a column per query field); `glob`: the
    database's LIKE ignores case (SQLite), so case-sensitive wildcards use GLOB."""
    return true() if query.root is None else _node(query.root, table, glob)


def _node(node: Node, table: Table, glob: bool) -> ColumnElement[bool]:
    match node:
        case Term():
            return _term(node, table, glob)
        case Not(operand=operand):
            return not_(_node(operand, table, glob))
        case And(operands=operands):
            return and_(true(), *(_node(n, table, glob) for n in operands))
        case Or(operands=operands):
            return or_(false(), *(_node(n, table, glob) for n in operands))


def _term(term: Term, table: Table, glob: bool) -> ColumnElement[bool]:
    column = table.c[term.target]
    parts = term.value.split("*")
    if len(parts) == 1 and not term.contains:
        same = (func.lower(column) == func.lower(literal(term.value)) if term.caseless
                else column == literal(term.value))
        return and_(column.is_not(None), same)
    if term.caseless:
        pattern = "%".join(like_escaped(p) for p in parts)
        if term.contains:
            pattern = f"%{pattern}%"
        like = func.lower(column).like(func.lower(literal(pattern)), escape=ESCAPE)
        return and_(column.is_not(None), like)
    if glob:
        return and_(column.is_not(None),
                    column.op("GLOB")(literal("*".join(glob_escaped(p) for p in parts))))
    return and_(column.is_not(None),
                column.like(literal("%".join(like_escaped(p) for p in parts)), escape=ESCAPE))


def like_escaped(text: str) -> str:
    """`text` matching only itself in a LIKE pattern with ESCAPE '\\'."""
    return (text.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%")
            .replace("_", ESCAPE + "_"))


def glob_escaped(text: str) -> str:
    """`text` matching only itself in a GLOB pattern (`*` never occurs: it splits)."""
    return text.replace("[", "[[]").replace("?", "[?]")
