"""Token conversions (strings, numbers, durations) and the lark tree -> AST transformer.

Both parsers (`fastparse` and the lark one in `parser`) build nodes through the helpers
here, so a file means the same thing whichever of them read it. Nothing here reports
semantic problems: it only converts what the grammar accepted.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from lark import Token, Transformer, v_args
from lark.tree import Meta

from baseshift.core.diagnostics import Span
from baseshift.core.expr import (
    Attr,
    Binary,
    Call,
    Expr,
    Index,
    Interp,
    ListExpr,
    Literal,
    Name,
    ObjectExpr,
    Unary,
)

from . import ast

_PIECE = re.compile(
    r'\\u(?P<hex>[0-9a-fA-F]{4})|\\(?P<esc>[^\n])'
    r'|\$\{(?P<expr>(?:[^}"\n]|"(?:[^"\\\n]|\\[^\n])*")*)\}|(?P<text>[^\\$]+|\$)'
)
_INTERP = re.compile(r'\$\{((?:[^}"\n]|"(?:[^"\\\n]|\\[^\n])*")*)\}')
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$", "/": "/"}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([A-Za-z]+)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

InnerParser = Callable[[str, int, int], Expr]
"""Parses the text inside `${...}` found at (line, columns right of col 1) in the file."""


def number_value(text: str) -> int | float:
    """The value of a NUMBER token: an int unless it has a fraction or an exponent.

    Integers too long for `int()` (over 4300 digits) read as float infinity, which the
    checks then refuse where a whole number is needed, instead of raising.
    """
    if any(c in text for c in ".eE") or len(text) > 4000:
        return float(text)
    return int(text)


def parse_duration(text: str) -> float:
    """Seconds in `500ms`, `5s`, `1m30s`, `2h`, `1d`; ValueError names a bad unit."""
    seconds = 0.0
    for amount, unit in _DURATION_PART.findall(text):
        if unit not in _UNITS:
            raise ValueError(f"unknown unit '{unit}' in duration '{text}'; use ms, s, m, h or d")
        seconds += float(amount) * _UNITS[unit]
    return seconds


def decode_text(raw: str) -> str:
    """A string token's text without quotes and escapes; `${` is kept as written."""
    return "".join(_decoded(m) or m.group() for m in _PIECE.finditer(raw, 1, len(raw) - 1))


def _decoded(m: re.Match[str]) -> str | None:
    if m["hex"]:
        return chr(int(m["hex"], 16))
    if m["esc"] is not None:
        return _ESCAPES.get(m["esc"], "\\" + m["esc"])
    return m["text"]


def string_expr(raw: str, span: Span, inner: InnerParser) -> Expr:
    """A string token as a Literal, or an Interp when it holds `${...}` parts."""
    if "\\" not in raw:
        if "${" not in raw:
            return Literal(raw[1:-1], span)
        return _interpolated(raw, span, inner)
    parts: list[str | Expr] = []
    for m in _PIECE.finditer(raw, 1, len(raw) - 1):
        if m["expr"] is None:
            text = _decoded(m) or ""
            if parts and isinstance(parts[-1], str):
                parts[-1] += text
            else:
                parts.append(text)
        else:
            parts.append(inner(m["expr"], span.line, span.col + m.start("expr") - 1))
    if not any(not isinstance(p, str) for p in parts):
        return Literal("".join(p for p in parts if isinstance(p, str)), span)
    return Interp(tuple(p for p in parts if p != ""), span)


def _interpolated(raw: str, span: Span, inner: InnerParser) -> Expr:
    """string_expr for strings without escapes (the common case, done with fewer matches)."""
    parts: list[str | Expr] = []
    end = 1
    for m in _INTERP.finditer(raw, 1, len(raw) - 1):
        if m.start() > end:
            parts.append(raw[end:m.start()])
        parts.append(inner(m[1], span.line, span.col + m.start(1) - 1))
        end = m.end()
    if end < len(raw) - 1:
        parts.append(raw[end:-1])
    return Interp(tuple(parts), span)


def shift(e: Expr, line: int, cols: int) -> Expr:
    """Move an expression parsed on its own (from line 1) to `line`, `cols` columns right."""
    s = e.span
    span = Span(line + s.line - 1, s.col + cols, line + s.end_line - 1, s.end_col + cols)
    changes: dict[str, Any] = {"span": span}
    for f in dataclasses.fields(e):
        value = getattr(e, f.name)
        if f.name != "span":
            changes[f.name] = _shift_value(value, line, cols)
    return dataclasses.replace(e, **changes)


def _shift_value(value: Any, line: int, cols: int) -> Any:
    if isinstance(value, tuple):
        return tuple(_shift_value(v, line, cols) for v in value)
    if dataclasses.is_dataclass(value) and hasattr(value, "span"):
        return shift(value, line, cols)  # type: ignore[arg-type]
    return value


def key_path(names: list[tuple[str, Span]]) -> Expr:
    """`input.customer` as written after `per`: a Name, then one Attr per further name."""
    (first, start), *rest = names
    e: Expr = Name(first, start)
    for name, span in rest:
        e = Attr(e, name, Span(start.line, start.col, span.end_line, span.end_col))
    return e


def token_span(t: Token) -> Span:
    return Span(t.line or 1, t.column or 1, t.end_line or 1, t.end_column or 1)


def _span(meta: Meta) -> Span:
    if meta.empty:
        return Span(1, 1, 1, 1)
    return Span(meta.line, meta.column, meta.end_line, meta.end_column)


def _text(t: Token) -> ast.Text:
    return ast.Text(decode_text(str(t)), token_span(t))


def _word(t: Token) -> ast.Text:
    return ast.Text(str(t), token_span(t))


def _number(t: Token, negative: Token | None = None) -> ast.Number:
    value = number_value(str(t))
    span = token_span(t)
    if negative is not None:
        span = Span(negative.line or 1, negative.column or 1, span.end_line, span.end_col)
    return ast.Number(-value if negative is not None else value, span)


def _kept(children: list[Any]) -> tuple[Any, ...]:
    return tuple(c for c in children if c is not None)


@v_args(meta=True)
class ToAst(Transformer[Token, Any]):
    """Turns a lark parse tree into `dsl.ast` nodes; `inner` parses `${...}` parts."""

    def __init__(self, inner: InnerParser) -> None:
        super().__init__()
        self._inner = inner

    # ---- file, workflow, template

    def file(self, meta: Meta, c: list[Any]) -> ast.SourceFile:
        return ast.SourceFile(tuple(c))

    def workflow(self, meta: Meta, c: list[Any]) -> ast.Workflow:
        return ast.Workflow(ast.Ident(str(c[0]), token_span(c[0])), tuple(c[1:]), _span(meta))

    def template(self, meta: Meta, c: list[Any]) -> ast.Template:
        return ast.Template(c[0], tuple(c[1:]), _span(meta))

    def version(self, meta: Meta, c: list[Any]) -> ast.Version:
        return ast.Version(_text(c[0]), _span(meta))

    def description(self, meta: Meta, c: list[Any]) -> ast.Description:
        return ast.Description(_text(c[0]), _span(meta))

    def concurrency(self, meta: Meta, c: list[Any]) -> ast.Concurrency:
        return ast.Concurrency(_number(c[0]), _span(meta))

    def output_block(self, meta: Meta, c: list[Any]) -> ast.OutputBlock:
        return ast.OutputBlock(c[0], _span(meta))

    def template_uses(self, meta: Meta, c: list[Any]) -> ast.TemplateUses:
        return ast.TemplateUses(ast.Ident(str(c[0]), token_span(c[0])), _span(meta))

    # ---- triggers and keyed run concurrency

    def schedule(self, meta: Meta, c: list[Any]) -> ast.Schedule:
        return ast.Schedule(_text(c[0]), tuple(c[1:]), _span(meta))

    def schedule_timezone(self, meta: Meta, c: list[Any]) -> ast.ScheduleOption:
        return ast.ScheduleOption("timezone", _text(c[0]), _span(meta))

    def schedule_missed(self, meta: Meta, c: list[Any]) -> ast.ScheduleOption:
        return ast.ScheduleOption("missed", _word(c[0]), _span(meta))

    def schedule_with(self, meta: Meta, c: list[Any]) -> ast.ScheduleOption:
        return ast.ScheduleOption("with", c[0], _span(meta))

    def webhook(self, meta: Meta, c: list[Any]) -> ast.Webhook:
        return ast.Webhook(ast.Ident(str(c[0]), token_span(c[0])), _span(meta))

    def key_path(self, meta: Meta, c: list[Any]) -> Expr:
        return key_path([(str(t), token_span(t)) for t in c])

    def key_string(self, meta: Meta, c: list[Any]) -> Expr:
        return string_expr(str(c[0]), token_span(c[0]), self._inner)

    def run_limit(self, meta: Meta, c: list[Any]) -> ast.RunLimit:
        limit, key, _, policy = c
        return ast.RunLimit(_number(limit), key, _word(policy) if policy is not None else None,
                            _span(meta))

    # ---- declarations

    def input_block(self, meta: Meta, c: list[Any]) -> ast.InputBlock:
        return ast.InputBlock(tuple(c), _span(meta))

    def output_decl(self, meta: Meta, c: list[Any]) -> ast.OutputDecl:
        return ast.OutputDecl(tuple(c), _span(meta))

    def field_decl(self, meta: Meta, c: list[Any]) -> ast.FieldDecl:
        (name, key_span), optional, type_, default = c
        return ast.FieldDecl(ast.Ident(name, key_span), optional is not None, type_, default,
                             _span(meta))

    def type_ref(self, meta: Meta, c: list[Any]) -> ast.TypeExpr:
        return ast.TypeExpr(str(c[0]), c[1], _span(meta))

    # ---- jobs

    def job(self, meta: Meta, c: list[Any]) -> ast.Job:
        return ast.Job(ast.Ident(str(c[0]), token_span(c[0])), c[1], tuple(c[2:]), _span(meta))

    def on_failure(self, meta: Meta, c: list[Any]) -> ast.OnFailure:
        return ast.OnFailure(tuple(c), _span(meta))

    def uses_ref(self, meta: Meta, c: list[Any]) -> ast.UsesRef:
        rng = c[1] if len(c) > 1 else None
        text = None
        if rng is not None:
            value = decode_text(str(rng)) if rng.type == "STRING" else str(rng)
            text = ast.Text(value, token_span(rng))
        return ast.UsesRef(c[0], text, _span(meta))

    def dotted_name(self, meta: Meta, c: list[Any]) -> ast.Ident:
        return ast.Ident(".".join(str(t) for t in c), _span(meta))

    def needs(self, meta: Meta, c: list[Any]) -> ast.Needs:
        return ast.Needs(tuple(c), _span(meta))

    def dep(self, meta: Meta, c: list[Any]) -> ast.Dep:
        return ast.Dep(str(c[0]), c[1] is not None, _span(meta))

    def when(self, meta: Meta, c: list[Any]) -> ast.When:
        return ast.When(c[0], _span(meta))

    def with_block(self, meta: Meta, c: list[Any]) -> ast.With:
        return ast.With(c[0], _span(meta))

    def retry(self, meta: Meta, c: list[Any]) -> ast.Retry:
        return ast.Retry(_number(c[0]), tuple(c[1:]), _span(meta))

    def backoff(self, meta: Meta, c: list[Any]) -> ast.RetryOption:
        return ast.RetryOption("backoff", str(c[0]), _span(meta))

    def factor(self, meta: Meta, c: list[Any]) -> ast.RetryOption:
        return ast.RetryOption("factor", str(c[0]), _span(meta))

    def exponential(self, meta: Meta, c: list[Any]) -> ast.RetryOption:
        return ast.RetryOption("exponential", "", _span(meta))

    def fixed(self, meta: Meta, c: list[Any]) -> ast.RetryOption:
        return ast.RetryOption("fixed", "", _span(meta))

    def max_delay(self, meta: Meta, c: list[Any]) -> ast.RetryOption:
        return ast.RetryOption("max", str(c[0]), _span(meta))

    def jitter(self, meta: Meta, c: list[Any]) -> ast.RetryOption:
        return ast.RetryOption("jitter", str(c[0]) + ("%" if c[1] is not None else ""),
                               _span(meta))

    def timeout(self, meta: Meta, c: list[Any]) -> ast.Timeout:
        return ast.Timeout(str(c[0]), _span(meta))

    def priority(self, meta: Meta, c: list[Any]) -> ast.Priority:
        return ast.Priority(_number(c[1], c[0]), _span(meta))

    def fan_out(self, meta: Meta, c: list[Any]) -> ast.FanOut:
        return ast.FanOut(ast.Ident(str(c[0]), token_span(c[0])), c[2], _span(meta))

    def runs_on(self, meta: Meta, c: list[Any]) -> ast.RunsOn:
        return ast.RunsOn(tuple(ast.Ident(str(t), token_span(t)) for t in c[1:]), _span(meta))

    # ---- expressions

    def binary(self, meta: Meta, c: list[Any]) -> Binary:
        return Binary(str(c[1]), c[0], c[2], _span(meta))

    def unary(self, meta: Meta, c: list[Any]) -> Unary:
        return Unary(str(c[0]), c[1], _span(meta))

    def attr(self, meta: Meta, c: list[Any]) -> Attr:
        return Attr(c[0], str(c[1]), _span(meta))

    def index(self, meta: Meta, c: list[Any]) -> Index:
        return Index(c[0], c[1], _span(meta))

    def string(self, meta: Meta, c: list[Any]) -> Expr:
        return string_expr(str(c[0]), token_span(c[0]), self._inner)

    def number(self, meta: Meta, c: list[Any]) -> Literal:
        return Literal(number_value(str(c[0])), token_span(c[0]))

    def true(self, meta: Meta, c: list[Any]) -> Literal:
        return Literal(True, token_span(c[0]))

    def false(self, meta: Meta, c: list[Any]) -> Literal:
        return Literal(False, token_span(c[0]))

    def null(self, meta: Meta, c: list[Any]) -> Literal:
        return Literal(None, token_span(c[0]))

    def name(self, meta: Meta, c: list[Any]) -> Name:
        return Name(str(c[0]), token_span(c[0]))

    def call(self, meta: Meta, c: list[Any]) -> Call:
        return Call(str(c[0]), _kept(c[1:]), _span(meta))

    def list_expr(self, meta: Meta, c: list[Any]) -> ListExpr:
        return ListExpr(_kept(c), _span(meta))

    def object_expr(self, meta: Meta, c: list[Any]) -> ObjectExpr:
        return ObjectExpr(tuple((k, v) for (k, _), v in c), _span(meta))

    def field(self, meta: Meta, c: list[Any]) -> tuple[tuple[str, Span], Expr]:
        return c[0], c[1]

    def name_key(self, meta: Meta, c: list[Any]) -> tuple[str, Span]:
        return str(c[0]), token_span(c[0])

    def string_key(self, meta: Meta, c: list[Any]) -> tuple[str, Span]:
        return decode_text(str(c[0])), token_span(c[0])
