"""The lark tree -> AST transformer (the lark side of parsing; see `larkparse`).

Token conversions shared with `fastparse` live in `literals`. Nothing here reports semantic
problems: it only converts what the grammar accepted.
"""
from __future__ import annotations

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
    ListExpr,
    Literal,
    Name,
    ObjectExpr,
    Unary,
)

from . import ast
from .literals import InnerParser, decode_text, key_path, number_value, string_expr


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
        (name, key_span), optional, secret, type_, default = c
        return ast.FieldDecl(ast.Ident(name, key_span), optional is not None, type_, default,
                             _span(meta), secret is not None)

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
