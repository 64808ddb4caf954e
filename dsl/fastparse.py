"""A fast recursive-descent reader of grammar/baseshift.lark for files without errors.

lark's generic LALR runtime costs several microseconds a token, too slow for a 10,000-job
file. This reader accepts exactly what the grammar accepts where it is sure (including the
contextual-keyword rules of `parser._KeywordLexer`) and builds the same AST; on anything
else it gives up (returns None) and the lark parser reads the file and reports the errors.
tests/dsl/test_dsl_fuzz.py checks the two agree, on examples and on fuzzed input.
"""
from __future__ import annotations

import re

from baseshift.core.diagnostics import Span
from baseshift.core.expr import Expr, ObjectExpr

from . import ast
from .fastexpr import KEY_FOLLOW, KEYWORD_TYPES, KEYWORDS, Bail, ExprReader, parse_expression
from .literals import key_path, string_expr

__all__ = ["KEYWORDS", "KEYWORD_TYPES", "KEY_FOLLOW", "STATEMENT_WORDS", "parse_expression",
           "parse_file"]
_RETRY_OPTIONS = frozenset({"backoff", "factor", "exponential", "fixed", "max", "jitter"})
_SCHEDULE_OPTIONS = frozenset({"timezone", "missed", "with"})
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*")
_BLANK = re.compile(r"[ \t\f\r\n]+")
_RUNS_ON = re.compile(r"runs-on(?![A-Za-z0-9_-])")
STATEMENT_WORDS = ("description", "needs", "when", "with", "retry", "timeout", "priority", "for",
                   "runs-on", "runs", "version", "concurrency", "input", "job", "on", "output",
                   "schedule", "webhook")
"""The words that start a job or workflow statement."""
LABEL = re.compile(rf"(?!(?:{'|'.join(STATEMENT_WORDS)})(?![A-Za-z0-9_-]))[A-Za-z][A-Za-z0-9_-]*")
"""The grammar's LABEL terminal (tests/dsl/test_dsl_parser.py checks they are the same)."""


def parse_file(source: str) -> ast.SourceFile | None:
    """The AST of a file, or None when lark must read it (errors or rare forms)."""
    try:
        return _Reader(source).file()
    except (Bail, RecursionError, IndexError):
        return None


class _Reader(ExprReader):
    """The statements of the grammar, on top of the expression reader."""

    # ---- file, workflow, template

    def file(self) -> ast.SourceFile:
        items: list[ast.Workflow | ast.Template] = []
        while (t := self.toks[self.i]) != "":
            if t == "workflow":
                items.append(self.workflow())
            elif t == "template":
                items.append(self.template())
            else:
                raise Bail
        return ast.SourceFile(tuple(items))

    def workflow(self) -> ast.Workflow:
        a = self.i
        self.i += 1
        name = self.ident()
        body = self.block(_WORKFLOW_ITEMS)
        return ast.Workflow(name, body, self.span(a, self.i - 1))  # type: ignore[arg-type]

    def template(self) -> ast.Template:
        a = self.i
        self.i += 1
        name = self.dotted_name()
        body = self.block(_TEMPLATE_ITEMS)
        return ast.Template(name, body, self.span(a, self.i - 1))  # type: ignore[arg-type]

    def block(self, statements: dict[str, str]) -> tuple[object, ...]:
        self.take("{")
        body = []
        while (t := self.toks[self.i]) != "}":
            method = statements.get(t)
            if method is None:
                raise Bail
            body.append(getattr(self, method)())
        self.i += 1
        return tuple(body)

    def version(self) -> ast.Version:
        a = self.i
        self.i += 1
        return ast.Version(self.text(), self.span(a, self.i - 1))

    def description(self) -> ast.Description:
        a = self.i
        self.i += 1
        return ast.Description(self.text(), self.span(a, self.i - 1))

    def concurrency(self) -> ast.Concurrency:
        a = self.i
        self.i += 1
        return ast.Concurrency(self.number(), self.span(a, self.i - 1))

    def output_block(self) -> ast.OutputBlock:
        a = self.i
        self.i += 1
        return ast.OutputBlock(self.object_expr(), self.span(a, self.i - 1))

    def template_uses(self) -> ast.TemplateUses:
        a = self.i
        self.i += 1
        return ast.TemplateUses(self.ident(), self.span(a, self.i - 1))

    # ---- triggers and keyed run concurrency

    def schedule(self) -> ast.Schedule:
        a = self.i
        self.i += 1
        cron = self.text()
        options = []
        while self.toks[self.i] in _SCHEDULE_OPTIONS:
            options.append(self.schedule_option())
        return ast.Schedule(cron, tuple(options), self.span(a, self.i - 1))

    def schedule_option(self) -> ast.ScheduleOption:
        a = self.i
        kind = self.toks[self.i]
        self.i += 1
        value: ast.Text | ObjectExpr
        if kind == "timezone":
            value = self.text()
        elif kind == "missed":
            value = self.policy_word()
        else:
            value = self.object_expr()
        return ast.ScheduleOption(kind, value, self.span(a, self.i - 1))

    def webhook(self) -> ast.Webhook:
        a = self.i
        self.i += 1
        self.take("secret")
        return ast.Webhook(self.ident(), self.span(a, self.i - 1))

    def runs(self) -> ast.RunsOn | ast.RunLimit:
        """A workflow's `runs-on gpu` or `runs 1 per input.x` (both start with `runs`)."""
        start = self.ends[self.i] - len(self.toks[self.i])
        return self.runs_on() if _RUNS_ON.match(self.source, start) else self.run_limit()

    def run_limit(self) -> ast.RunLimit:
        a = self.i
        self.i += 1
        limit = self.number()
        key = None
        if self.toks[self.i] == "per":
            self.i += 1
            key = self.run_key()
        policy = None
        if self.on_conflict():
            self.i += 2
            policy = self.policy_word()
        return ast.RunLimit(limit, key, policy, self.span(a, self.i - 1))

    def run_key(self) -> Expr:
        a = self.i
        t = self.toks[a]
        if t[:1] == '"':
            self.i += 1
            return string_expr(t, self.span(a, a), self.interpolation)
        names = [self.ident()]
        while self.toks[self.i] == ".":
            self.i += 1
            names.append(self.ident())
        return key_path([(n.name, n.span) for n in names])

    def on_conflict(self) -> bool:
        """`on conflict` as lark's ON_CONFLICT terminal reads it: blanks between, no comment."""
        i = self.i
        if self.toks[i] != "on" or self.toks[i + 1] != "conflict":
            return False
        gap = _BLANK.fullmatch(self.source, self.ends[i], self.ends[i + 1] - len("conflict"))
        return gap is not None

    def policy_word(self) -> ast.Text:
        """A WORD terminal (`catch-up`)."""
        a = self.i
        return ast.Text(self.joined(_WORD), self.span(a, self.i - 1))

    def joined(self, terminal: re.Pattern[str]) -> str:
        """One lark terminal that this reader splits into several tokens written together
        (`catch-up`, `runs-on`, `linux-x64`): its text, once past those tokens."""
        a = self.i
        match = terminal.match(self.source, self.ends[a] - len(self.toks[a]))
        if match is None:
            raise Bail
        while self.ends[self.i] < match.end():
            self.i += 1
        if self.ends[self.i] != match.end():
            raise Bail
        self.i += 1
        return match.group()

    # ---- declarations

    def input_block(self) -> ast.InputBlock:
        a = self.i
        self.i += 1
        return ast.InputBlock(self.field_decls(), self.span(a, self.i - 1))

    def output_decl(self) -> ast.OutputDecl:
        a = self.i
        self.i += 1
        return ast.OutputDecl(self.field_decls(), self.span(a, self.i - 1))

    def field_decls(self) -> tuple[ast.FieldDecl, ...]:
        self.take("{")
        fields = []
        while self.toks[self.i] != "}":
            fields.append(self.field_decl())
            if self.toks[self.i] == ",":
                self.i += 1
        self.i += 1
        return tuple(fields)

    def field_decl(self) -> ast.FieldDecl:
        a = self.i
        name = self.key()
        optional = self.toks[self.i] == "?"
        self.i += optional
        self.take(":")
        secret = self.toks[self.i] == "secret"
        if secret and self.toks[self.i + 1] in ("?", ":"):
            raise Bail  # lark reads `secret` before ':' as a name (parser._KeywordLexer)
        self.i += secret
        type_ = self.type_ref()
        default = None
        if self.toks[self.i] == "=":
            self.i += 1
            default = self.expr()
        return ast.FieldDecl(name, optional, type_, default, self.span(a, self.i - 1), secret)

    def type_ref(self) -> ast.TypeExpr:
        a = self.i
        name = self.word()
        item = None
        if self.toks[self.i] == "<":
            self.i += 1
            item = self.type_ref()
            self.take(">")
        return ast.TypeExpr(name, item, self.span(a, self.i - 1))

    def key(self) -> ast.Ident:
        t = self.toks[self.i]
        if t[:1] == '"':
            return ast.Ident(self.text().value, self.span(self.i - 1, self.i - 1))
        return self.ident()

    # ---- jobs

    def job(self) -> ast.Job:
        a = self.i
        self.i += 1
        name = self.ident()
        self.take("uses")
        uses = self.uses_ref()
        body = self.block(_JOB_STATEMENTS)
        return ast.Job(name, uses, body, self.span(a, self.i - 1))  # type: ignore[arg-type]

    def uses_ref(self) -> ast.UsesRef:
        a = self.i
        name = self.dotted_name()
        t = self.toks[self.i]
        rng = None
        if t[:1] == "@" and len(t) > 1:
            s = self.span(self.i, self.i)
            rng = ast.Text(t[1:], Span(s.line, s.col + 1, s.end_line, s.end_col))
            self.i += 1
        elif t == "@":
            self.i += 1
            rng = self.text()
        return ast.UsesRef(name, rng, self.span(a, self.i - 1))

    def dotted_name(self) -> ast.Ident:
        a = self.i
        name = self.word()
        while self.toks[self.i] == ".":
            self.i += 1
            name += "." + self.word()
        return ast.Ident(name, self.span(a, self.i - 1))

    def on_failure(self) -> ast.OnFailure:
        a = self.i
        self.i += 1
        self.take("failure")
        jobs = self.block({"job": "job"})
        return ast.OnFailure(jobs, self.span(a, self.i - 1))  # type: ignore[arg-type]

    def needs(self) -> ast.Needs:
        a = self.i
        self.i += 1
        deps = [self.dep()]
        while self.toks[self.i] == ",":
            self.i += 1
            deps.append(self.dep())
        return ast.Needs(tuple(deps), self.span(a, self.i - 1))

    def dep(self) -> ast.Dep:
        a = self.i
        name = self.word()
        optional = self.toks[self.i] == "?"
        self.i += optional
        return ast.Dep(name, optional, self.span(a, self.i - 1))

    def when(self) -> ast.When:
        a = self.i
        self.i += 1
        return ast.When(self.expr(), self.span(a, self.i - 1))

    def with_block(self) -> ast.With:
        a = self.i
        self.i += 1
        return ast.With(self.object_expr(), self.span(a, self.i - 1))

    def retry(self) -> ast.Retry:
        a = self.i
        self.i += 1
        count = self.number()
        options = []
        while self.toks[self.i] in _RETRY_OPTIONS:
            options.append(self.retry_option())
        return ast.Retry(count, tuple(options), self.span(a, self.i - 1))

    def retry_option(self) -> ast.RetryOption:
        a = self.i
        kind = self.toks[self.i]
        self.i += 1
        if kind in ("backoff", "max"):
            text = self.duration()
        elif kind == "factor":
            text = self.toks[self.i]
            self.number()
        elif kind == "jitter":
            text = self.toks[self.i]
            self.number()
            if self.toks[self.i] == "%":
                text += "%"
                self.i += 1
        else:
            text = ""
        return ast.RetryOption(kind, text, self.span(a, self.i - 1))

    def timeout(self) -> ast.Timeout:
        a = self.i
        self.i += 1
        return ast.Timeout(self.duration(), self.span(a, self.i - 1))

    def priority(self) -> ast.Priority:
        a = self.i
        self.i += 1
        negative = self.toks[self.i] == "-"
        self.i += negative
        n = self.number()
        value = ast.Number(-n.value, self.span(a + 1, self.i - 1)) if negative else n
        return ast.Priority(value, self.span(a, self.i - 1))

    def runs_on(self) -> ast.RunsOn:
        a = self.i
        self.joined(_RUNS_ON)
        labels = [self.label()]
        while self.toks[self.i] == ",":
            self.i += 1
            labels.append(self.label())
        return ast.RunsOn(tuple(labels), self.span(a, self.i - 1))

    def label(self) -> ast.Ident:
        a = self.i
        return ast.Ident(self.joined(LABEL), self.span(a, self.i - 1))

    def fan_out(self) -> ast.FanOut:
        a = self.i
        self.i += 1
        var = self.ident()
        self.take("in")
        return ast.FanOut(var, self.expr(), self.span(a, self.i - 1))

_WORKFLOW_ITEMS = {"version": "version", "description": "description",
                   "concurrency": "concurrency", "input": "input_block", "job": "job",
                   "on": "on_failure", "output": "output_block", "schedule": "schedule",
                   "webhook": "webhook", "runs": "runs"}
_TEMPLATE_ITEMS = {"version": "version", "description": "description",
                   "uses": "template_uses", "with": "with_block", "input": "input_block",
                   "output": "output_decl"}
_JOB_STATEMENTS = {"description": "description", "needs": "needs", "when": "when",
                   "with": "with_block", "retry": "retry", "timeout": "timeout",
                   "priority": "priority", "for": "fan_out", "runs": "runs_on"}
