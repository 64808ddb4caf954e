"""The fast reader's tokens and expressions (see `fastparse`): one regex pass over the
text, then precedence climbing over the grammar's expression levels."""
from __future__ import annotations

import re
from itertools import accumulate, repeat
from operator import add, itemgetter, sub

from baseshift.core.diagnostics import Span
from baseshift.core.expr import (
    Attr,
    Binary,
    Call,
    Expr,
    Index,
    ListExpr,
    Literal,
    Name,
    ObjectExpr,
    Unary,
)

from . import ast
from .literals import decode_text, number_value, string_expr

KEYWORDS = frozenset({
    "workflow", "template", "version", "description", "concurrency", "input", "output",
    "job", "uses", "needs", "when", "with", "retry", "backoff", "factor", "exponential",
    "fixed", "max", "jitter", "timeout", "priority", "for", "in", "on", "failure",
    "and", "or", "not", "true", "false", "null", "schedule", "timezone", "missed", "webhook",
    "secret", "runs", "per",
})
"""The grammar's keywords: reserved only where the grammar can take them."""
KEYWORD_TYPES = frozenset(k.upper() for k in KEYWORDS)
KEY_FOLLOW = re.compile(r"[ \t\f\r\n]*\??[ \t\f\r\n]*:")
"""After a keyword, means it is an object or input key (see parser._KeywordLexer)."""

STRING = r'"(?:[^"\\\n$]|\\[^\n]|\$(?!\{)|\$\{(?:[^}"\n]|"(?:[^"\\\n]|\\[^\n])*")*\})*"'
_TOKEN = re.compile(
    r"([ \t\f\r\n]*(?:#[^\n]*[ \t\f\r\n]*)*)("
    r"[A-Za-z_][A-Za-z0-9_]*|" + STRING + r"|\d+(?:\.\d+)?[A-Za-z]+(?:\d+(?:\.\d+)?[A-Za-z]+)*"
    r"|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|@[^\s{}#\"]+|==|!=|<=|>=|[-+*/%<>(){}\[\].,:?=@]|\Z)"
)
_FIRST, _SECOND = itemgetter(0), itemgetter(1)
_IDENT_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_LEVELS = {"or": 1, "and": 2, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4, "in": 4,
           "+": 5, "-": 5, "*": 6, "/": 6, "%": 6}
_WORD_OPS = frozenset({"or", "and", "in"})
_LITERALS = {"true": True, "false": False, "null": None}
_ENDS = frozenset({",", "}", ")", "]", ""})
_NOT_ATOMS = frozenset({"not", "-", "(", "[", "{"})
_MAX_DEPTH = 100


class Bail(Exception):
    """The reader is not sure; lark decides."""


def parse_expression(text: str, line: int = 1, cols: int = 0) -> Expr | None:
    """One expression (placed at `line`, `cols` columns right), or None if lark must read it."""
    try:
        reader = ExprReader(text, line - 1, cols)
        expr = reader.expr()
        return expr if reader.toks[reader.i] == "" else None
    except (Bail, RecursionError, IndexError):
        return None


def _tokenize(source: str) -> tuple[tuple[str, ...], list[int], list[int]]:
    """Tokens, where each ends, and each one's line (tokens never span lines)."""
    pairs = _TOKEN.findall(source)
    space, toks = list(map(_FIRST, pairs)), tuple(map(_SECOND, pairs))
    ends = list(accumulate(map(add, map(len, space), map(len, toks))))
    end = toks.index("") if "" in toks else -1
    if end < 0 or ends[end] != len(source):
        raise Bail  # a character no token starts with
    lines = list(accumulate(map(str.count, space[: end + 1], repeat("\n")), initial=1))
    return toks[: end + 1], ends[: end + 1], lines[1:]


class ExprReader:
    """Tokens of one text and the expression part of the grammar."""

    def __init__(self, source: str, line: int = 0, cols: int = 0) -> None:
        self.source = source
        self.toks, self.ends, lines = _tokenize(source)
        newlines = [-1 - cols, *(m.start() for m in re.finditer("\n", source))]
        starts = list(map(sub, self.ends, map(len, self.toks)))
        self.cols = list(map(sub, starts, map(newlines.__getitem__, map(sub, lines, repeat(1)))))
        self.lines = list(map(add, lines, repeat(line))) if line else lines
        self.i = 0
        self.depth = 0

    # ---- tokens and spans

    def span(self, a: int, b: int) -> Span:
        return Span(self.lines[a], self.cols[a], self.lines[b], self.cols[b] + len(self.toks[b]))

    def take(self, value: str) -> None:
        if self.toks[self.i] != value:
            raise Bail
        self.i += 1

    def ident(self) -> ast.Ident:
        t = self.toks[self.i]
        if t[:1] not in _IDENT_START:
            raise Bail
        self.i += 1
        return ast.Ident(t, self.span(self.i - 1, self.i - 1))

    def word(self) -> str:
        """An identifier's text, for names whose own span nothing needs."""
        t = self.toks[self.i]
        if t[:1] not in _IDENT_START:
            raise Bail
        self.i += 1
        return t

    def text(self) -> ast.Text:
        t = self.toks[self.i]
        if t[:1] != '"':
            raise Bail
        self.i += 1
        return ast.Text(decode_text(t), self.span(self.i - 1, self.i - 1))

    def number(self) -> ast.Number:
        t = self.toks[self.i]
        if not t[:1].isdigit() or not t[-1].isdigit():
            raise Bail
        self.i += 1
        return ast.Number(number_value(t), self.span(self.i - 1, self.i - 1))

    def duration(self) -> str:
        t = self.toks[self.i]
        if not t[:1].isdigit() or t[-1].isdigit():
            raise Bail
        self.i += 1
        return t

    def key_follows(self) -> bool:
        return KEY_FOLLOW.match(self.source, self.ends[self.i]) is not None

    # ---- expressions (precedence climbing over the grammar's levels)

    def expr(self) -> Expr:
        t, after = self.toks[self.i], self.toks[self.i + 1]
        if after in _ENDS and t not in _NOT_ATOMS:
            return self.atom()  # the common case: a lone name, string or number
        return self.binary(1)

    def binary(self, level: int) -> Expr:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise Bail
        a = self.i
        left = self.prefixed(level)
        while True:
            op = self.toks[self.i]
            op_level = _LEVELS.get(op)
            if op_level is None or op_level < level or op in _WORD_OPS and self.key_follows():
                break
            self.i += 1
            right = self.binary(op_level + 1)
            left = Binary(op, left, right, self.span(a, self.i - 1))
            if op_level == 4 and _LEVELS.get(self.toks[self.i]) == 4:
                raise Bail  # comparisons do not chain
        self.depth -= 1
        return left

    def prefixed(self, level: int) -> Expr:
        """`not x` (only where the grammar has a not_expr), `-x`, or a postfix expression."""
        t = self.toks[self.i]
        if t != "not" and t != "-":
            return self.postfix()
        if t == "not" and level > 3 or t == "-" and self.toks[self.i + 1] == "not":
            raise Bail
        a = self.i
        self.i += 1
        operand = self.binary(3) if t == "not" else self.prefixed(6)
        return Unary(t, operand, self.span(a, self.i - 1))

    def postfix(self) -> Expr:
        a = self.i
        e = self.atom()
        while True:
            t = self.toks[self.i]
            if t == ".":
                self.i += 1
                name = self.ident()
                e = Attr(e, name.name, self.span(a, self.i - 1))
            elif t == "[":
                self.i += 1
                index = self.expr()
                self.take("]")
                e = Index(e, index, self.span(a, self.i - 1))
            else:
                return e

    def atom(self) -> Expr:
        a = self.i
        t = self.toks[a]
        c = t[:1]
        if c in _IDENT_START:
            self.i += 1
            if t in _LITERALS:
                return Literal(_LITERALS[t], self.span(a, a))
            if t == "not":
                raise Bail
            if self.toks[self.i] != "(":
                return Name(t, self.span(a, a))
            self.i += 1
            return Call(t, self.items(")"), self.span(a, self.i - 1))
        if c == '"':
            self.i += 1
            return string_expr(t, self.span(a, a), self.interpolation)
        if c.isdigit():
            return Literal(self.number().value, self.span(a, a))
        if t == "(":
            self.i += 1
            inner = self.expr()
            self.take(")")
            return inner
        if t == "[":
            self.i += 1
            return ListExpr(self.items("]"), self.span(a, self.i - 1))
        if t == "{":
            return self.object_expr()
        raise Bail

    def items(self, close: str) -> tuple[Expr, ...]:
        out: list[Expr] = []
        while self.toks[self.i] != close:
            out.append(self.expr())
            t = self.toks[self.i]
            if t == ",":
                self.i += 1
            elif t != close:
                raise Bail
        self.i += 1
        return tuple(out)

    def object_expr(self) -> ObjectExpr:
        a = self.i
        self.take("{")
        fields: list[tuple[str, Expr]] = []
        toks = self.toks
        while (t := toks[self.i]) != "}":
            if t[:1] == '"':
                key = decode_text(t)
                self.i += 1
            else:
                key = self.word()
            self.take(":")
            fields.append((key, self.expr()))
            if self.toks[self.i] == ",":
                self.i += 1
        self.i += 1
        return ObjectExpr(tuple(fields), self.span(a, self.i - 1))

    def interpolation(self, text: str, line: int, cols: int) -> Expr:
        expr = _path(text, line, cols) or parse_expression(text, line, cols)
        if expr is None:
            raise Bail
        return expr



def _path(text: str, line: int, cols: int) -> Expr | None:
    """`${input.order_id}`-style parts without a tokenizer: most interpolations are paths."""
    if _PATH.fullmatch(text) is None or text.partition(".")[0] in _LITERAL_HEADS:
        return None
    col = cols + 1
    expr: Expr | None = None
    for part in text.split("."):
        end = col + len(part)
        span = Span(line, cols + 1, line, end)
        expr = Name(part, span) if expr is None else Attr(expr, part, span)
        col = end + 1
    return expr


_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_LITERAL_HEADS = frozenset({"true", "false", "null", "not"})
