"""The syntax tree of a workflow file: declarations and statements, each with its span.

Expressions inside it are the engine's own `baseshift.core.expr` nodes. Statements keep the
order and repetitions the user wrote, so that the checker can report duplicates; nothing
here is checked yet.
"""
from __future__ import annotations

from dataclasses import dataclass

from baseshift.core.diagnostics import Diagnostic, Span
from baseshift.core.expr import Expr, ObjectExpr


@dataclass(frozen=True, slots=True)
class Ident:
    """A name as written (a job, an input, a template like `payment.validate`)."""

    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class Text:
    """A plain string argument (`version "1.0.0"`, `description "..."`)."""

    value: str
    span: Span


@dataclass(frozen=True, slots=True)
class Number:
    """A numeric argument (`concurrency 10`, `retry 3`, `priority -5`)."""

    value: int | float
    span: Span


@dataclass(frozen=True, slots=True)
class TypeExpr:
    """A declared type as written: `string`, `list<object>`; checked later."""

    name: str
    item: TypeExpr | None
    span: Span


@dataclass(frozen=True, slots=True)
class FieldDecl:
    """`name?: secret type = default` inside `input { }` or a template's `output { }`."""

    name: Ident
    optional: bool
    type: TypeExpr
    default: Expr | None
    span: Span
    secret: bool = False


@dataclass(frozen=True, slots=True)
class Version:
    value: Text
    span: Span


@dataclass(frozen=True, slots=True)
class Description:
    value: Text
    span: Span


@dataclass(frozen=True, slots=True)
class Concurrency:
    value: Number
    span: Span


@dataclass(frozen=True, slots=True)
class InputBlock:
    fields: tuple[FieldDecl, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class OutputDecl:
    """A template's typed `output { status: string }`."""

    fields: tuple[FieldDecl, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class OutputBlock:
    """A workflow's `output { name: expr }`."""

    values: ObjectExpr
    span: Span


@dataclass(frozen=True, slots=True)
class Dep:
    """One entry of `needs`: `charge` or `charge?` (optional)."""

    name: str
    optional: bool
    span: Span


@dataclass(frozen=True, slots=True)
class Needs:
    deps: tuple[Dep, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class When:
    condition: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class With:
    values: ObjectExpr
    span: Span


@dataclass(frozen=True, slots=True)
class RetryOption:
    """One part after `retry N`: kind is backoff, factor, exponential, fixed, max or jitter."""

    kind: str
    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class Retry:
    count: Number
    options: tuple[RetryOption, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Timeout:
    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class Priority:
    value: Number
    span: Span


@dataclass(frozen=True, slots=True)
class FanOut:
    """`for item in expr`."""

    var: Ident
    over: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class RunsOn:
    """`runs-on gpu, cuda12`: the job runs only on a worker that has all these labels."""

    labels: tuple[Ident, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class UsesRef:
    """`uses http` (an executor) or `uses payment.validate@^1.2` (a template)."""

    name: Ident
    range: Text | None
    span: Span


JobStmt = Description | Needs | When | With | Retry | Timeout | Priority | FanOut | RunsOn


@dataclass(frozen=True, slots=True)
class Job:
    name: Ident
    uses: UsesRef
    body: tuple[JobStmt, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class OnFailure:
    jobs: tuple[Job, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class ScheduleOption:
    """One part after `schedule "CRON"`: `timezone "Europe/Paris"` (a Text), `missed skip`
    (a Text holding the word) or `with { ... }` (the scheduled run's inputs)."""

    kind: str
    value: Text | ObjectExpr
    span: Span


@dataclass(frozen=True, slots=True)
class Schedule:
    """`schedule "0 3 * * *" timezone "Europe/Paris" missed catch-up with { ... }`."""

    cron: Text
    options: tuple[ScheduleOption, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Webhook:
    """`webhook secret NAME`: runs start on `POST /api/v1/hooks/WORKFLOW` with that secret."""

    secret: Ident
    span: Span


@dataclass(frozen=True, slots=True)
class RunLimit:
    """`runs N per KEY on conflict POLICY`: at most N runs at once with the same key."""

    limit: Number
    key: Expr | None
    policy: Text | None
    span: Span


WorkflowItem = (Version | Description | Concurrency | InputBlock | Job | OnFailure | OutputBlock
                | Schedule | Webhook | RunLimit | RunsOn)


@dataclass(frozen=True, slots=True)
class Workflow:
    name: Ident
    body: tuple[WorkflowItem, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class TemplateUses:
    executor: Ident
    span: Span


TemplateItem = Version | Description | TemplateUses | With | InputBlock | OutputDecl


@dataclass(frozen=True, slots=True)
class Template:
    name: Ident
    body: tuple[TemplateItem, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class SourceFile:
    items: tuple[Workflow | Template, ...]

    @property
    def workflows(self) -> tuple[Workflow, ...]:
        return tuple(i for i in self.items if isinstance(i, Workflow))

    @property
    def templates(self) -> tuple[Template, ...]:
        return tuple(i for i in self.items if isinstance(i, Template))


@dataclass(frozen=True, slots=True)
class Damage:
    """The declarations that hold a syntax error, and the codes of checks made unreliable."""

    broken: tuple[Span, ...] = ()
    unreliable: frozenset[str] = frozenset()

    def spoils(self, d: Diagnostic) -> bool:
        """True for a problem found in a repaired declaration or by an unreliable check."""
        return d.code in self.unreliable or any(starts_within(d.span, s) for s in self.broken)


def starts_within(at: Span, span: Span) -> bool:
    """Whether `at` starts within `span` (whose end is exclusive)."""
    return (span.line, span.col) <= (at.line, at.col) < (span.end_line, span.end_col)


@dataclass(frozen=True, slots=True)
class Parsed:
    """A parsed file: its tree and its syntax errors. With errors, the tree is the repaired
    one (None when no repair could finish it), and `damage` says what checks of it to drop."""

    tree: SourceFile | None
    diagnostics: tuple[Diagnostic, ...]
    damage: Damage = Damage()
