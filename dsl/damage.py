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

from baseshift.core.diagnostics import Diagnostic, Span

from . import ast
from .ast import Damage

_JOBS_KNOWN = frozenset({"dsl.unknown-job", "dsl.unknown-name", "dsl.missing"})
"""Checks that need every job and workflow statement: a repair outside a job may drop one."""
_INPUTS_KNOWN = frozenset({"dsl.unknown-input"})
"""Checks that need every input: a repair in the input block may drop one."""
_TEMPLATES_KNOWN = frozenset({"dsl.unknown-template"})
"""Checks that need every template: a repair outside any block may drop one."""


_Node = TypeVar("_Node", ast.Workflow | ast.Template, ast.WorkflowItem | ast.Job)


def assess(tree: ast.SourceFile, errors: Iterable[Diagnostic]) -> Damage:
    """Where each syntax error is, in terms of the declarations of `tree`."""
    broken: list[Span] = []
    unreliable: set[str] = set()
    for error in errors:
        span, codes = _place(tree, error.span)
        if span is not None:
            broken.append(span)
        unreliable |= codes
    return Damage(tuple(broken), frozenset(unreliable))


def _place(tree: ast.SourceFile, at: Span) -> tuple[Span | None, frozenset[str]]:
    """The declaration an error spoils, and the checks it makes unreliable."""
    item = _first_around(tree.items, at)
    if isinstance(item, ast.Template):
        return item.span, _TEMPLATES_KNOWN
    if item is None:
        return None, _TEMPLATES_KNOWN | _JOBS_KNOWN
    part = _first_around(_declarations(item), at)
    if part is None:
        return None, _JOBS_KNOWN
    if isinstance(part, ast.InputBlock):
        return part.span, _INPUTS_KNOWN
    return part.span, frozenset()


def _declarations(wf: ast.Workflow) -> list[ast.WorkflowItem | ast.Job]:
    """A workflow's statements, with the jobs of `on failure` blocks on their own."""
    out: list[ast.WorkflowItem | ast.Job] = []
    for item in wf.body:
        out.extend(item.jobs if isinstance(item, ast.OnFailure) else (item,))
    return out


def _first_around(items: Iterable[_Node], at: Span) -> _Node | None:
    return next((i for i in items if _inside(at, i.span)), None)


_inside = ast.starts_within
