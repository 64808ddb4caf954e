"""A log query: which stored log lines to answer (`workflow_id:nightly AND level:error`).

The tree the query language's parser builds (dsl/logquery.py) and each log store reads: the
SQL stores translate it into a WHERE clause of bound parameters, the memory store calls
`matches`. `matches` is the meaning; a store's translation must answer the same lines.

- `field:value` is an exact match (case-insensitive for `level`), except on the text fields
  (`message`, `error`), where it means "contains, ignoring case";
- a `*` in a value matches any run of characters (`job:fetch*`), in any field;
- a word or a "quoted phrase" without a field searches the message (contains, ignoring case);
- NOT, AND, OR and parentheses combine them; a missing field never matches a term.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

FIELDS = ("timestamp", "level", "message", "source", "logger", "event", "workflow_id",
          "run_id", "job", "attempt", "worker", "trace_id", "span_id", "request_id",
          "actor", "error")
"""The fields of a stored log line, in the order an export writes them."""
QUERY_FIELDS = tuple(f for f in FIELDS if f != "timestamp")
"""The fields a query may name (time is the request's `from` and `to`)."""
TEXT_FIELDS = frozenset({"message", "error"})
"""Fields a term searches inside rather than matching whole."""
CASELESS_FIELDS = frozenset({"level", "source"})
"""Fields matched whole but ignoring case."""
LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True, slots=True)
class Term:
    """`field:value`, or a bare word or phrase (`field` None: the message)."""

    field: str | None
    value: str

    @property
    def target(self) -> str:
        return self.field or "message"

    @property
    def contains(self) -> bool:
        """True when the term matches inside the field rather than the whole of it."""
        return self.target in TEXT_FIELDS

    @property
    def caseless(self) -> bool:
        return self.contains or self.target in CASELESS_FIELDS


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]


Node = Term | Not | And | Or


@dataclass(frozen=True, slots=True)
class LogQuery:
    """A parsed query; `root` None matches every line (the empty query)."""

    root: Node | None = None
    text: str = ""

    def matches(self, line: Mapping[str, object]) -> bool:
        return self.root is None or _matches(self.root, line)

    def highlights(self) -> list[Term]:
        """The positive terms on the message and error text, for marking in a page: a term
        under NOT matched nothing there to mark."""
        return [t for t in _positive_terms(self.root) if t.contains]


def term_pattern(term: Term) -> re.Pattern[str]:
    """The regular expression a term's value means on its field (anchored unless the field
    is searched inside); `*` is the only special character. Its meaning, not a way to
    match: with many `*` it backtracks for ever on text it misses, so matching and marking
    use `term_spans`."""
    body = ".*".join(re.escape(part) for part in term.value.split("*"))
    flags = re.IGNORECASE | re.DOTALL if term.caseless else re.DOTALL
    # \Z, not $: `$` also matches before a final newline, so `job:build` would match "build\n"
    return re.compile(body if term.contains else f"^{body}\\Z", flags)


def term_spans(term: Term, text: str) -> Iterator[tuple[int, int]]:
    """Where `term` matches in `text` (what `term_pattern` means), one span after another:
    the part before each `*` is found at its earliest place after the part before it, so
    matching takes a few linear passes however many `*` the value holds. (The regular
    expression's `.*`s backtrack: `a*a*a*a*a*a*a*a*a*a*b` on a long line of `a` takes
    longer than anyone waits, and a query is anybody's text.) A search inside gives each
    match from its first part's start to its last part's end; a whole-field term gives the
    whole text or nothing."""
    values = term.value.split("*")
    if not term.contains:
        if _whole(values, term.caseless, text):
            yield 0, len(text)
        return
    parts = [_literal(value, term.caseless) for value in values]
    pos = 0
    while pos <= len(text):
        found = _inside(parts, text, pos)
        if found is None:
            return
        yield found
        pos = found[1] if found[1] > found[0] else found[1] + 1


@functools.lru_cache(maxsize=1024)
def _literal(part: str, caseless: bool) -> re.Pattern[str]:
    return re.compile(re.escape(part), re.IGNORECASE if caseless else 0)


def _inside(parts: list[re.Pattern[str]], text: str, pos: int) -> tuple[int, int] | None:
    first = parts[0].search(text, pos)
    if first is None:
        return None
    at = first.end()
    for part in parts[1:]:
        found = part.search(text, at)
        if found is None:
            return None
        at = found.end()
    return first.start(), at


def _whole(values: list[str], caseless: bool, text: str) -> bool:
    parts = [_literal(value, caseless) for value in values]
    if len(parts) == 1:
        return parts[0].fullmatch(text) is not None
    head = parts[0].match(text)
    # a literal matches as many characters as it has, its case folded or not
    tail = len(text) - len(values[-1])
    if head is None or tail < head.end() or parts[-1].fullmatch(text, tail) is None:
        return False
    at = head.end()
    for part in parts[1:-1]:
        found = part.search(text, at, tail)
        if found is None:
            return False
        at = found.end()
    return True


def _matches(node: Node, line: Mapping[str, object]) -> bool:
    if isinstance(node, Term):
        value = line.get(node.target)
        if value is None:
            return False
        return next(term_spans(node, str(value)), None) is not None
    if isinstance(node, Not):
        return not _matches(node.operand, line)
    if isinstance(node, And):
        return all(_matches(n, line) for n in node.operands)
    return any(_matches(n, line) for n in node.operands)


def _positive_terms(node: Node | None) -> Iterator[Term]:
    if node is None or isinstance(node, Not):
        return
    if isinstance(node, Term):
        yield node
        return
    for operand in node.operands:
        yield from _positive_terms(operand)
