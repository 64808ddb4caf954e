"""Parsing with lark: every syntax error reported, each repaired, and the repaired tree.

`parser.parse_source` hands lark only what `fastparse` does not accept, so every syntax
error is reported from here: all of them, worded by `syntaxmsg`, repaired by `recovery`.
This module (and lark) is imported only then.
"""
from __future__ import annotations

import re

from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from baseshift.core.diagnostics import Diagnostic, Span
from baseshift.core.expr import Expr, Literal

from . import fastparse, recovery
from .ast import Parsed
from .damage import assess
from .larkbuild import build_lark, lark_parser, literals
from .literals import shift
from .syntaxmsg import syntax_diagnostic
from .transformer import ToAst

__all__ = ["MAX_ERRORS", "build_lark", "lark_parse", "lark_parser", "relocate"]

MAX_ERRORS = 20
_MAX_RECOVERIES = 2000


def lark_parse(source: str, path: str, start: str) -> Parsed:
    """Parse with lark, repairing each syntax error; the repaired tree comes back with the
    errors and what they damage (see `damage`), for the checks of what is intact."""
    recovery = _Recovery(source, path)
    try:
        tree = lark_parser().parse(source, start=start, on_error=recovery)
    except UnexpectedInput as e:
        recovery.report(e)
        tree = None
    if tree is None:
        return Parsed(None, tuple(recovery.diagnostics))
    inner = _InnerParser(path)
    try:
        result = ToAst(inner).transform(tree)
    except RecursionError:
        return Parsed(None, (*recovery.diagnostics, _too_deep(path)))
    except VisitError as exc:
        if isinstance(exc.orig_exc, RecursionError):
            return Parsed(None, (*recovery.diagnostics, _too_deep(path)))
        raise
    errors = (*recovery.diagnostics, *inner.errors)
    if not errors:
        return Parsed(result, ())
    if start != "file":
        return Parsed(None, errors)
    return Parsed(result, errors, assess(result, [*recovery.repaired, *(d.span for d in errors)]))


def _too_deep(path: str) -> Diagnostic:
    return Diagnostic(path, Span(1, 1, 1, 2), "dsl.syntax", "this file nests too deeply to read",
                      "split deeply nested expressions into smaller ones")


class _InnerParser:
    """Parses `${...}` parts for the transformer, collecting their syntax errors."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[Diagnostic] = []

    def __call__(self, text: str, line: int, cols: int) -> Expr:
        expr = fastparse.parse_expression(text)
        if expr is not None:
            return shift(expr, line, cols)
        parsed = lark_parse(text, self.path, "expr")
        if parsed.tree is not None and not parsed.diagnostics:
            return shift(parsed.tree, line, cols)  # type: ignore[arg-type]
        self.errors.extend(relocate([_inside(d) for d in parsed.diagnostics], line, cols))
        return Literal(text, Span(line, cols + 1, line, cols + len(text) + 1))


def _inside(d: Diagnostic) -> Diagnostic:
    """Reword an error found in a `${...}` part: its end is the '}', not the file's; a hint
    for the mistake itself is kept, a generic one says what goes inside."""
    message = d.message.replace("unexpected end of file", "unexpected '}' ending '${...}'")
    message = message.replace("the end of the file", "'}'")
    return Diagnostic(d.path, d.span, d.code, message, d.hint or "inside '${...}' write an "
                      "expression, like ${input.name}")


def relocate(diagnostics: list[Diagnostic], line: int, cols: int) -> list[Diagnostic]:
    """Move diagnostics found in a `${...}` part to where that part is in the file."""
    out = []
    for d in diagnostics:
        s = d.span
        span = Span(line + s.line - 1, s.col + cols, line + s.end_line - 1, s.end_col + cols)
        out.append(Diagnostic(d.path, span, d.code, d.message, d.hint, d.severity))
    return out


class _Recovery:
    """lark's on_error callback: records each error, then repairs the parse and goes on.

    After a repair that did not read the tokens after it (the parser lost its place), errors
    are not reported again until it has read RESYNC tokens in a row: those would be
    follow-ons of the first one, like yacc's error state."""

    def __init__(self, source: str, path: str) -> None:
        self.source = source
        self.path = path
        self.diagnostics: list[Diagnostic] = []
        self.repaired: list[Span] = []
        """Where every error was, reported or not: the repairs made there."""
        self._lines: set[int] = set()
        self._calls = 0
        self._lost_at: int | None = None
        self._owed = 0
        """Openers a repair inserted: the closers the file then lacks are follow-ons."""

    def __call__(self, e: UnexpectedInput) -> bool:
        self._calls += 1
        found = self._diagnose(e)
        if self._calls > _MAX_RECOVERIES or len(self.diagnostics) >= MAX_ERRORS:
            self._add(found)
            return False
        if isinstance(e, UnexpectedCharacters):
            recovery.skip_string(e)
        if not isinstance(e, UnexpectedToken):
            self._add(found)
            return True
        done = recovery.repair(e, literals())
        if done.closed and self._owed:
            self._owed -= done.closed
            found = None
        self._owed += done.opened
        self._add(found)
        if done.read < recovery.RESYNC:
            self._lost_at = recovery.lexer_state(e.interactive_parser).line_ctr.char_pos
        return done.read >= 0

    def report(self, e: UnexpectedInput) -> None:
        """Report the error the parse stopped at."""
        self._add(self._diagnose(e))

    def _diagnose(self, e: UnexpectedInput) -> Diagnostic | None:
        """The error's diagnostic, or None while the parser has not found its place again."""
        self.repaired.append(Span.point(e.line or 1, e.column or 1))
        here = _position(e)
        if self._lost_at is not None:
            if _tokens_between(self.source, self._lost_at, here) < recovery.RESYNC:
                self._lost_at = here
                return None
            self._lost_at = None
        return syntax_diagnostic(e, self.source, self.path)

    def _add(self, d: Diagnostic | None) -> None:
        if d is not None and d.span.line not in self._lines and \
                len(self.diagnostics) < MAX_ERRORS:
            self._lines.add(d.span.line)
            self.diagnostics.append(d)


_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|[A-Za-z0-9_]+|\S')


def _position(e: UnexpectedInput) -> int:
    if isinstance(e, UnexpectedToken):
        return e.token.start_pos if e.token.start_pos is not None else -1
    return e.pos_in_stream or 0


def _tokens_between(source: str, start: int, end: int) -> int:
    """About how many tokens the parser read between two errors (comments not counted)."""
    if end < 0:
        return 0
    return sum(not t.startswith("#") for t in _TOKEN.findall(source, start, end))
