"""What a file's syntax errors spoil: the declarations that hold one, and the checks that
depend on something a repair may have dropped.

The lark parser repairs each syntax error and builds a tree of the whole file, so that the
declarations it left intact (the other jobs, the input block, the templates) are checked
too. What the repairs touched is not: its problems are the syntax error's follow-ons, not
the author's. Nor are the checks that read a declaration that may be missing, like
"needs 'fetch', which is not defined" when a syntax error swallowed `job fetch`.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from baseshift.core.diagnostics import Span

from . import ast
from .ast import Damage

_JOBS_KNOWN = frozenset({"dsl.unknown-job", "dsl.unknown-name", "dsl.missing"})
"""Checks that need every job and workflow statement: a repair outside a job may drop one."""
_INPUTS_KNOWN = frozenset({"dsl.unknown-input"})
"""Checks that need every input: a repair in the input block may drop one."""
_TEMPLATES_KNOWN = frozenset({"dsl.unknown-template"})
"""Checks that need every template: a repair outside any block may drop one."""


_Node = TypeVar("_Node", ast.Workflow | ast.Template, ast.WorkflowItem | ast.Job)


def assess(tree: ast.SourceFile, errors: Iterable[Span]) -> Damage:
    """What the syntax errors at `errors` (reported or not) spoil in the repaired `tree`.

    Every declaration around an error is spoiled, not only the first: a repair may end one
    declaration early and start the next with stand-in tokens at the same place."""
    broken: list[Span] = []
    unreliable: set[str] = set()
    for at in errors:
        spans, codes = _place(tree, at)
        broken += spans
        unreliable |= codes
    return Damage(tuple(dict.fromkeys(broken)), frozenset(unreliable))


def _place(tree: ast.SourceFile, at: Span) -> tuple[list[Span], frozenset[str]]:
    """The declarations an error spoils, and the checks it makes unreliable."""
    items = _around(tree.items, at)
    if not items:
        return [], _TEMPLATES_KNOWN | _JOBS_KNOWN
    spans: list[Span] = []
    codes: set[str] = set()
    for item in items:
        if isinstance(item, ast.Template):
            spans.append(item.span)
            codes |= _TEMPLATES_KNOWN
            continue
        parts = _around(_declarations(item), at)
        if not parts:
            codes |= _JOBS_KNOWN
        spans += [p.span for p in parts]
        if any(isinstance(p, ast.InputBlock) for p in parts):
            codes |= _INPUTS_KNOWN
    return spans, frozenset(codes)


def _declarations(wf: ast.Workflow) -> list[ast.WorkflowItem | ast.Job]:
    """A workflow's statements, with the jobs of `on failure` blocks on their own."""
    out: list[ast.WorkflowItem | ast.Job] = []
    for item in wf.body:
        out.extend(item.jobs if isinstance(item, ast.OnFailure) else (item,))
    return out


def _around(items: Iterable[_Node], at: Span) -> list[_Node]:
    return [i for i in items if ast.starts_within(at, i.span)]
