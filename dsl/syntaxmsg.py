"""What a syntax error says: where it is, what was found and expected in words users know,
and a hint when one of the examples in `hints.HINTS` failed in the same place.

Common mistakes that the parser only notices a token later, or that read better named
than described (a trailing comma, a hyphen in a name, single quotes...), are recognised
first by `mistakes`.
"""
from __future__ import annotations

import functools
from typing import Any, TypeVar

from lark import Token
from lark.exceptions import UnexpectedInput, UnexpectedToken
from lark.parsers.lalr_analysis import Reduce

from baseshift.core.diagnostics import Diagnostic, Span

from . import hints, mistakes, recovery
from .larkbuild import lark_parser, literals
from .report import closest

CODE = "dsl.syntax"
_K = TypeVar("_K")


def syntax_diagnostic(e: UnexpectedInput, source: str, path: str) -> Diagnostic:
    """A `dsl.syntax` diagnostic for one lark error, in words a workflow author knows."""
    known = mistakes.recognise(e, source)
    if known is not None:
        return Diagnostic(path, known.span, CODE, known.message, known.hint)
    back = recovery.rewind(e.interactive_parser, literals()) \
        if isinstance(e, UnexpectedToken) else None
    if back is not None:
        found, span = _describe_token(back.keyword, source)
        expected = set(back.parser.accepts())
    elif isinstance(e, UnexpectedToken):
        found, span = _describe_token(e.token, source)
        expected = set(e.accepts if e.accepts else e.expected)
    else:
        span = Span.point(e.line, e.column)
        found = f"character {source[e.pos_in_stream or 0]!r}"
        expected = set(getattr(e, "allowed", None) or ())
    message = f"unexpected {found}"
    wanted = describe_expected(set(expected))
    if wanted:
        message += f"; expected {wanted}"
    word = str(e.token) if isinstance(e, UnexpectedToken) and e.token.type == "NAME" else ""
    return Diagnostic(path, span, CODE, message, _misspelled(word, expected) or hint_for(e))


def _misspelled(word: str, expected: set[str]) -> str | None:
    """`did you mean 'retry'?` for a name close to a keyword that could stand there."""
    return closest(word, [text for t in expected
                          if (text := literals().get(t, "")).isidentifier()])


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
    literal = sorted(f"'{literals().get(t, t.lower())}'" for t in expected
                     if t not in hints.TERMINAL_WORDS)
    words = [hints.TERMINAL_WORDS[t] for t in hints.TERMINAL_WORDS if t in expected]
    items = literal + phrases + words
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


Place = tuple[int, str]
"""Where an error happened, as the hint table knows it: the parser's state, and the kind of
token it got there ("<char>" for text no terminal matches)."""


def place(e: UnexpectedInput) -> Place | None:
    """The place of an error; after a statement word read as a name, the place of that word."""
    if not isinstance(e, UnexpectedToken):
        state = getattr(getattr(e, "state", None), "position", None)
        return None if state is None else (state, "<char>")
    back = recovery.rewind(e.interactive_parser, literals())
    if back is not None:
        return settled(back.parser.parser_state), back.keyword.type
    return settled(e.interactive_parser.parser_state), e.token.type


def settled(parser_state: Any) -> int:
    """The parser's state after the reductions it would make whatever the next token.

    After `version "1.0.0"` and after a job's '}' the parser is in different states, both
    of which can only reduce to "inside the workflow's braces"; an example written after
    one then gives its hint after the other too."""
    states = parser_state.parse_conf.states
    stack: list[int] = list(parser_state.state_stack)
    while True:
        actions = set(states[stack[-1]].values())
        if len(actions) != 1:
            return stack[-1]
        [(action, rule)] = actions
        if action is not Reduce:
            return stack[-1]
        if rule.expansion:
            del stack[-len(rule.expansion):]
        stack.append(states[stack[-1]][rule.origin.name][1])


def hint_for(e: UnexpectedInput) -> str | None:
    """The hint whose example failed at the same place; None when none did. There is no
    nearest match: a hint about another mistake misleads more than no hint."""
    where = place(e)
    if where is None:
        return None
    exact, anywhere = _hint_table()
    for label in (*exact.get(where, ()), *anywhere.get(where[0], ())):
        hint = hints.HINTS[label]
        if not hint.same_line or _on_the_line_before(e):
            return hint.text
    return None


def _on_the_line_before(e: UnexpectedInput) -> bool:
    """Whether the unexpected token is on the line of the token the parser read before it."""
    if not isinstance(e, UnexpectedToken):
        return True
    values = e.interactive_parser.parser_state.value_stack
    last = values[-1] if values else None
    line = last.end_line if isinstance(last, Token) else getattr(
        getattr(last, "meta", None), "end_line", None)
    return line is None or line == e.token.line


@functools.cache
def _hint_table() -> tuple[dict[Place, list[str]], dict[int, list[str]]]:
    """Hint labels by the place and token kind of their examples' errors, and by the parser
    state alone for the hints that fit any token there; in the order of `hints.HINTS`."""
    exact: dict[Place, list[str]] = {}
    anywhere: dict[int, list[str]] = {}
    for label, hint in hints.HINTS.items():
        for example in hint.examples:
            try:
                lark_parser().parse(example, start="file")
            except UnexpectedInput as e:
                where = place(e)
                if where is None:
                    continue
                _add(exact, where, label)
                if hint.anywhere:
                    _add(anywhere, where[0], label)
    return exact, anywhere


def _add(table: dict[_K, list[str]], key: _K, label: str) -> None:
    if label not in table.setdefault(key, []):
        table[key].append(label)
