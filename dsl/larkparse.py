"""The lark LALR(1) parser of workflow files: syntax diagnostics and error recovery.

`parser.parse_source` hands lark only what `fastparse` does not accept, so every syntax
error is reported from here: all of them, with the expected tokens in words and a hint from
`hints.HINTS`. This module (and lark) is imported only then.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from copy import copy
from typing import Any

from lark import Lark, Token
from lark.exceptions import UnexpectedInput, UnexpectedToken, VisitError
from lark.lexer import ContextualLexer, LexerState

from baseshift.core.diagnostics import Diagnostic, Span
from baseshift.core.expr import Expr, Literal

from . import fastparse, hints, recovery
from .ast import Parsed
from .damage import assess
from .literals import shift
from .transformer import ToAst

MAX_ERRORS = 20
_MAX_RECOVERIES = 2000
_KEY_FOLLOW = re.compile(r"[ \t\f\r\n]*\??[ \t\f\r\n]*:")


class _KeywordLexer(ContextualLexer):
    """lark's contextual lexer, plus two rules about keywords (as `fastparse` reads them).

    A keyword followed by ':' is a key: LALR merges the states after an expression, so
    `timeout` after `{ a: 1` is a keyword for lark; where a name may also stand and a ':'
    follows, it can only be a key. And a keyword is a whole word: where no name may stand,
    lark would read `jobs` as the keyword `job` and a name `s`.
    """

    def __init__(self, conf: Any, states: dict[int, Any], always_accept: Any = ()) -> None:
        if not conf.strict:
            # The terminal collision analysis (interegular) takes lark seconds to minutes; it
            # belongs to the strict build, which a test runs, not to every start.
            conf = copy(conf)
            conf.skip_validation = True
        super().__init__(conf, states, always_accept)
        self._name_states = frozenset(s for s, accepts in states.items() if "NAME" in accepts)

    def lex(self, lexer_state: LexerState, parser_state: Any) -> Iterator[Token]:
        for token in super().lex(lexer_state, parser_state):
            if token.type in fastparse.KEYWORD_TYPES:
                text = lexer_state.text.text
                assert isinstance(text, str)
                rest = _WORD_REST.match(text, lexer_state.line_ctr.char_pos)
                if rest is not None:
                    lexer_state.line_ctr.feed(rest.group(), test_newline=False)
                    token = Token.new_borrow_pos("NAME", str(token) + rest.group(), token)
                    token.end_column = lexer_state.line_ctr.column
                    token.end_pos = lexer_state.line_ctr.char_pos
                elif (parser_state.position in self._name_states
                        and _KEY_FOLLOW.match(text, lexer_state.line_ctr.char_pos)):
                    token = Token.new_borrow_pos("NAME", str(token), token)
            yield token


_WORD_REST = re.compile(r"[A-Za-z0-9_]+")


@functools.cache
def lark_parser() -> Lark:
    """The one lark parser for the language, built on first use (in about 0.2 s).

    Files without syntax errors never get here (`fastparse` reads them), so most commands
    never build it."""
    return build_lark(strict=False)


def build_lark(*, strict: bool) -> Lark:
    """Build the lark parser. `strict=True` (for the tests) makes grammar conflicts and
    colliding terminals errors; it needs `interegular` and takes far longer.

    No cache file: building takes about as long as loading lark's pickle from the shared
    temporary folder, which another local user could plant."""
    return Lark.open_from_package(
        "baseshift.grammar", "baseshift.lark", parser="lalr", lexer="contextual",
        start=["file", "expr"], propagate_positions=True, maybe_placeholders=True,
        strict=strict, _plugins={"ContextualLexer": _KeywordLexer},
    )


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
    return Parsed(result, errors, assess(result, errors))


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
    """Reword an error found in a `${...}` part: its end is the '}', not the file's."""
    message = d.message.replace("unexpected end of file", "unexpected '}' ending '${...}'")
    message = message.replace("the end of the file", "'}'")
    return Diagnostic(d.path, d.span, d.code, message, "inside '${...}' write an expression, "
                      "like ${input.name}")


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
        self._lines: set[int] = set()
        self._calls = 0
        self._lost_at: int | None = None

    def __call__(self, e: UnexpectedInput) -> bool:
        self._calls += 1
        self.report(e)
        if self._calls > _MAX_RECOVERIES or len(self.diagnostics) >= MAX_ERRORS:
            return False
        if not isinstance(e, UnexpectedToken):
            return True
        read = recovery.repair(e, _literals())
        if read < recovery.RESYNC:
            self._lost_at = recovery.lexer_state(e.interactive_parser).line_ctr.char_pos
        return read >= 0

    def report(self, e: UnexpectedInput) -> None:
        here = _position(e)
        if self._lost_at is not None:
            if _tokens_between(self.source, self._lost_at, here) < recovery.RESYNC:
                self._lost_at = here
                return
            self._lost_at = None
        d = syntax_diagnostic(e, self.source, self.path)
        if d.span.line not in self._lines:
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


def syntax_diagnostic(e: UnexpectedInput, source: str, path: str) -> Diagnostic:
    """A `dsl.syntax` diagnostic for one lark error, in words a workflow author knows."""
    if isinstance(e, UnexpectedToken):
        found, span = _describe_token(e.token, source)
        expected = e.accepts if e.accepts else e.expected
    else:
        pos = e.pos_in_stream or 0
        char = source[pos] if pos < len(source) else ""
        span = Span.point(e.line, e.column)
        found = f"character {char!r}"
        expected = getattr(e, "allowed", None) or set()
        if char == '"':
            return Diagnostic(path, span, "dsl.syntax", "this string is not closed on its line "
                              "(or has a '${' without its '}')", _hint(e))
    message = f"unexpected {found}"
    wanted = describe_expected(set(expected))
    if wanted:
        message += f"; expected {wanted}"
    return Diagnostic(path, span, "dsl.syntax", message, _hint(e))


def _describe_token(token: Token, source: str) -> tuple[str, Span]:
    if token.type == "$END":
        return "end of file", _end_span(source)
    span = Span.point(token.line or 1, token.column or 1, len(str(token)))
    if token.type == "NAME":
        return f"name '{token}'", span
    if token.type in ("STRING", "NUMBER", "DURATION"):
        return f"{token.type.lower()} {_short(str(token))}", span
    if token.type == "RANGE":  # only ever unexpected as stray text the other terminals refuse
        return f"text '{_short(str(token))}'", span
    return f"'{token}'", span


def _short(text: str) -> str:
    return text if len(text) <= 30 else text[:27] + "..."


def _end_span(source: str) -> Span:
    text = source.rstrip()
    line = text.count("\n") + 1
    col = len(text) - (text.rfind("\n") + 1) + 1
    return Span.point(line, col)


def describe_expected(expected: set[str]) -> str:
    """`'}' or a job statement (needs, when, with, ...)` for a set of terminal names."""
    expected -= {"WS", "COMMENT"}
    phrases: list[str] = []
    for group, phrase in hints.GROUPS:
        if group <= expected:
            expected -= group | hints.ABSORBED.get(phrase, frozenset())
            phrases.append(phrase)
    literal = sorted(f"'{_literal(t)}'" for t in expected if t not in hints.TERMINAL_WORDS)
    words = [hints.TERMINAL_WORDS[t] for t in hints.TERMINAL_WORDS if t in expected]
    items = literal + phrases + words
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


@functools.cache
def _literals() -> dict[str, str]:
    return {t.name: str(t.pattern.value) for t in lark_parser().terminals
            if t.pattern.type == "str"}


def _literal(name: str) -> str:
    return _literals().get(name, name.lower())


@functools.cache
def _hint_table() -> tuple[dict[tuple[int, str], str], dict[int, str]]:
    exact: dict[tuple[int, str], str] = {}
    by_state: dict[int, str] = {}
    for label, hint in hints.HINTS.items():
        for example in hint.examples:
            try:
                lark_parser().parse(example, start="file")
            except UnexpectedInput as e:
                state = _state_of(e)
                if state is not None:
                    exact.setdefault((state, _kind(e)), label)
                    by_state.setdefault(state, label)
    return exact, by_state


def _state_of(e: UnexpectedInput) -> int | None:
    state = getattr(e, "state", None)
    return getattr(state, "position", None)


def _kind(e: UnexpectedInput) -> str:
    return e.token.type if isinstance(e, UnexpectedToken) else "<char>"


def _hint(e: UnexpectedInput) -> str | None:
    state = _state_of(e)
    if state is None:
        return None
    exact, by_state = _hint_table()
    label = exact.get((state, _kind(e))) or by_state.get(state)
    return hints.HINTS[label].text if label else None
