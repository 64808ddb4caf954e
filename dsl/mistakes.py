"""Common syntax mistakes, recognised from the error and the text around it, and named.

The generic message ("unexpected X; expected Y") describes what the parser saw. For these
mistakes that is misleading or late: a hyphen makes `fetch-data` two words, a trailing
comma makes the next statement word a job name, and the error appears a token later. Each
recogniser returns the mistake's own place, message and hint, or None.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from lark import Token, Tree
from lark.exceptions import UnexpectedInput, UnexpectedToken

from baseshift.core.diagnostics import Span

from . import recovery
from .larkbuild import literals


@dataclass(frozen=True, slots=True)
class Known:
    """A recognised mistake: where it is, what it is, and how to fix it."""

    span: Span
    message: str
    hint: str | None


_INVISIBLE_NAMES = {"\ufeff": "byte-order mark", "\u00a0": "no-break space",
                    "\u200b": "zero-width space", "\x1b": "escape character"}
_QUOTES = {"'": "'", "\u2018": "\u2019", "\u201c": "\u201d", "\u201e": "\u201d", "`": "`"}
_WORD = re.compile(r"[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)+")
_COMPARE = frozenset({"EQ", "NE", "LT", "LE", "GT", "GE"})
_STRING_PIECE = re.compile(r'\\.|\$\{|"|\}')


def recognise(e: UnexpectedInput, source: str) -> Known | None:
    """The first recogniser that knows this error, or None."""
    for recogniser in _RECOGNISERS:
        known = recogniser(e, source)
        if known is not None:
            return known
    return None


def _start(e: UnexpectedInput) -> tuple[int, int, int]:
    """Offset, line and column of the text the error is about."""
    if isinstance(e, UnexpectedToken):
        t = e.token
        return t.start_pos or 0, t.line or 1, t.column or 1
    return e.pos_in_stream or 0, e.line, e.column


def invisible_character(e: UnexpectedInput, source: str) -> Known | None:
    """A byte-order mark, a no-break space or a control character in the middle of a file."""
    if isinstance(e, UnexpectedToken) and e.token.type not in ("RANGE", "$END"):
        return None
    pos, line, col = _start(e)
    char = source[pos: pos + 1]
    if not char or char.isprintable():
        return None
    name = _INVISIBLE_NAMES.get(char) or (
        "control character" if ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0
        else "invisible character")
    # the code point, never the character: a right-to-left override would reorder the page
    return Known(Span.point(line, col), f"unexpected {name} (U+{ord(char):04X})",
                 "delete it: only plain spaces, tabs and newlines may separate words, and "
                 "most editors do not show this one")


def wrong_quotes(e: UnexpectedInput, source: str) -> Known | None:
    """'text', `text` or “text”: strings are written in straight double quotes."""
    if not isinstance(e, UnexpectedToken) or e.token.type != "RANGE":
        return None
    pos, line, col = _start(e)
    close = _QUOTES.get(source[pos])
    if close is None:
        return None
    end = source.find(close, pos + 1, _line_end(source, pos))
    width = (end + 1 if end > pos else pos + len(e.token)) - pos
    inner = source[pos + 1: pos + width - (end > pos)]
    escaped = inner.replace("\\", "\\\\").replace('"', '\\"')
    return Known(Span.point(line, col, width), "strings are written in double quotes",
                 f'write "{escaped}"')


def hyphen_in_name(e: UnexpectedInput, source: str) -> Known | None:
    """`fetch-data` where a name stands: a name holds letters, digits and '_', not '-'."""
    if not isinstance(e, UnexpectedToken) or e.token.type not in ("RANGE", "MINUS"):
        return None
    pos = e.token.start_pos or 0
    if not (source.startswith("-", pos) and _is_word(source, pos - 1)
            and _is_word(source, pos + 1)):
        return None
    start = pos
    while _is_word(source, start - 1):
        start -= 1
    m = _WORD.match(source, start)
    if m is None:
        return None
    word = m.group()
    line = e.token.line or 1
    col = (e.token.column or 1) - (pos - start)
    return Known(Span.point(line, col, len(word)),
                 f"'{word}' is not a name: names hold letters, digits and '_', not '-'",
                 f"write {word.replace('-', '_')}")


def chained_comparison(e: UnexpectedInput, source: str) -> Known | None:
    """`a < b < c`: a comparison gives true or false, which cannot be compared again."""
    if not isinstance(e, UnexpectedToken) or e.token.type not in _COMPARE:
        return None
    values = e.interactive_parser.parser_state.value_stack
    first = _operator(values[-2]) if len(values) >= 2 else None
    if first is None:
        return None
    t = e.token
    return Known(Span.point(t.line or 1, t.column or 1, len(t)),
                 f"comparisons do not chain: '{first}' and then '{t}'",
                 f"compare two values at a time and join them with 'and', like "
                 f"a {first} b and b {t} c")


def _operator(value: object) -> Token | None:
    """The comparison operator a value on the parser's stack is, if it is one."""
    if isinstance(value, Tree) and value.data == "_compare_op" and value.children:
        value = value.children[0]
    return value if isinstance(value, Token) and value.type in _COMPARE else None


def foreign_syntax(e: UnexpectedInput, source: str) -> Known | None:
    """`//` comments and `;` after statements, from other languages."""
    if not isinstance(e, UnexpectedToken) or e.token.type not in ("RANGE", "SLASH"):
        return None
    pos, line, col = _start(e)
    if source.startswith(("//", "/*"), pos):
        return Known(Span.point(line, col, 2), "comments start with '#'",
                     "write # before the comment; it runs to the end of the line")
    if source.startswith(";", pos):
        return Known(Span.point(line, col), "unexpected ';': statements end without one",
                     "remove the ';'")
    return None


def after_the_end(e: UnexpectedInput, source: str) -> Known | None:
    """A statement after the workflow's '}': one '}' too many closed the workflow early."""
    if not isinstance(e, UnexpectedToken) or not {"WORKFLOW", "TEMPLATE"} <= set(e.accepts):
        return None
    values = e.interactive_parser.parser_state.value_stack
    closed = _workflow_end(values)
    if closed is None or e.token.type in ("WORKFLOW", "TEMPLATE", "$END"):
        return None
    return Known(Span.point(*closed),
                 f"this '}}' closes the workflow, but '{e.token}' on line {e.token.line} "
                 "comes after it",
                 "remove this '}' if it is one too many: a workflow's statements go inside "
                 "its braces")


def _workflow_end(values: list[object]) -> tuple[int, int] | None:
    """Where the '}' that closed the workflow just read is, if the parser is right after
    one (reduced or not yet)."""
    last = values[-1] if values else None
    if isinstance(last, Tree) and last.data == "workflow" and not last.meta.empty:
        return last.meta.end_line, last.meta.end_column - 1
    opened = any(isinstance(v, Token) and v.type == "WORKFLOW" for v in values)
    if opened and isinstance(last, Token) and last.type == "RBRACE":
        return last.line or 1, last.column or 1
    return None


def missing_closer(e: UnexpectedInput, source: str) -> Known | None:
    """An unclosed '(' or '[': the closer is missing where the expression ended, on an
    earlier line than the token that showed it."""
    if not isinstance(e, UnexpectedToken):
        return None
    closers = {"RPAR": ")", "RSQB": "]"}
    wanted = [c for t, c in closers.items() if t in e.accepts]
    values = e.interactive_parser.parser_state.value_stack
    end = _end_of(values[-1]) if values else None
    if len(wanted) != 1 or end is None or e.token.line is None or e.token.line <= end[0]:
        return None
    opener = "(" if wanted[0] == ")" else "["
    return Known(Span.point(*end), f"a '{opener}' is not closed: '{wanted[0]}' is missing here",
                 f"add '{wanted[0]}' at the end of the expression")


def _end_of(value: object) -> tuple[int, int] | None:
    """Where a value on the parser's stack ends (line, column after it)."""
    if isinstance(value, Token) and value.end_line and value.end_column:
        return value.end_line, value.end_column
    if isinstance(value, Tree) and not value.meta.empty:
        return value.meta.end_line, value.meta.end_column
    return None


def trailing_comma(e: UnexpectedInput, source: str) -> Known | None:
    """`needs a,` before the next statement: that word is then read as one more item."""
    if not isinstance(e, UnexpectedToken):
        return None
    back = recovery.rewind(e.interactive_parser, literals())
    if back is None or back.comma is None:
        return None
    comma = back.comma
    return Known(Span.point(comma.line or 1, comma.column or 1),
                 f"this ',' ends a list, so '{back.keyword}' after it is read as one more item",
                 "remove the ',' after the last item")


def unclosed_string(e: UnexpectedInput, source: str) -> Known | None:
    """A string the STRING terminal refuses: not closed on its line, a '${' not closed, or
    a '\\"' inside '${...}' (where quotes are written plainly)."""
    if isinstance(e, UnexpectedToken):
        return None
    pos, line, col = _start(e)
    if not source.startswith('"', pos):
        return None
    end = _line_end(source, pos)
    opened: int | None = None
    inner = False
    for m in _STRING_PIECE.finditer(source, pos + 1, end):
        piece = m.group()
        if opened is None:
            if piece == "${":
                opened = m.start()
            elif piece == '"':
                break
        elif piece == '"':
            inner = not inner
        elif piece == "}" and not inner:
            opened = None
        elif piece == '\\"' and not inner:
            close = source.find("}", m.end(), end)
            fixed = source[opened: close + 1].replace('\\"', '"') if close > 0 else ""
            return Known(Span.point(line, col + m.start() - pos, 2),
                         "inside '${...}' a string is written with plain quotes, not \\\"",
                         f"write {fixed}" if fixed else 'like ${input.day + "x"}')
    if opened is not None:
        return Known(Span.point(line, col + opened - pos, 2),
                     "this '${' is not closed with '}' before the end of the line",
                     "close it with '}', like ${input.name}")
    return Known(Span.point(line, col), "this string is not closed on its line",
                 "end it with '\"' on the same line; write \\\" for a quote inside it")


def _line_end(source: str, pos: int) -> int:
    end = source.find("\n", pos)
    return len(source) if end < 0 else end


def _is_word(source: str, pos: int) -> bool:
    return 0 <= pos < len(source) and (source[pos].isalnum() or source[pos] == "_") \
        and source[pos].isascii()


_RECOGNISERS: tuple[Callable[[UnexpectedInput, str], Known | None], ...] = (
    invisible_character, unclosed_string, wrong_quotes, hyphen_in_name, foreign_syntax,
    chained_comparison, trailing_comma, after_the_end, missing_closer)
