"""Checks of shell-script settings: values that cannot be quoted where they stand, and
`raw(...)` given data from outside the workflow (a small taint analysis).

A value is tainted when it comes from a run's inputs (which also carry webhook payloads and
trigger inputs), from another job's result, from a failure's details, or from a loop
variable over such a list; inside a template, from the calling job (`input`) or an earlier
step (`steps`). Splicing such a value into a script with `raw()` lets whoever controls it run
commands, so the checker warns.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from baseshift.core.expr import (
    Call,
    Expr,
    Interp,
    ListExpr,
    Literal,
    ObjectExpr,
    children,
    describe,
    is_raw,
)
from baseshift.core.expr import references as expr_references
from baseshift.core.shellmark import mark_config
from baseshift.core.shellquote import contexts

from .report import Reporter

RAW_HINT = ("quote it instead: write ${%s} without raw(), and the shell sees one word "
            "holding exactly the value")
SCRIPT_HINT = ("write the script as a string and put the value in it as ${%s}: it is then "
               "one word holding exactly the value")


def check_shell(report: Reporter, config: ObjectExpr, schema: Mapping[str, Any] | None,
                tainted: Callable[[str], bool]) -> None:
    """Report refused places and tainted `raw()` in the script settings of `config`."""
    props = (schema or {}).get("properties")
    if not isinstance(props, Mapping):
        return
    marked = mark_config(config, schema)
    for key, value in marked.fields:
        prop = props.get(key)
        kind = prop.get("x-shell") if isinstance(prop, Mapping) else None
        if kind == "script" and not isinstance(value, Interp | Literal):
            _taint(report, value, value, tainted, f"setting '{key}' is a shell script made "
                   "from", SCRIPT_HINT)
        for interp in _shell_strings(value):  # only the marked strings of `value`
            _check_interp(report, interp, tainted)


def _shell_strings(e: Expr) -> Iterator[Interp]:
    if isinstance(e, Interp) and e.shell:
        yield e
    elif isinstance(e, ListExpr):
        for item in e.items:
            yield from _shell_strings(item)


def _check_interp(report: Reporter, e: Interp, tainted: Callable[[str], bool]) -> None:
    known = tuple((p.args[0].value,) if isinstance(p, Call) and is_raw(p)
                  and isinstance(p.args[0], Literal) and isinstance(p.args[0].value, str)
                  else p for p in e.parts)
    places = iter(contexts(known))
    for part in e.parts:
        if isinstance(part, str):
            continue
        place = next(places)
        if is_raw(part):
            _taint(report, part, children(part)[0], tainted, "raw() splices shell text from",
                   RAW_HINT)
        elif place.startswith("!"):
            report.error(part.span, "dsl.shell-quote",
                         f"this value stands {place[1:]} in the shell script of setting "
                         f"'{e.shell}', where it cannot be quoted",
                         "move it out (e.g. into a variable: X=${...}; then use \"$X\"), "
                         "or write raw(...) to splice shell text on purpose")


def _taint(report: Reporter, at: Expr, value: Expr, tainted: Callable[[str], bool],
           what: str, hint: str) -> None:
    roots = [root for root, _, _ in expr_references(value) if tainted(root)]
    if not roots:
        return
    report.warning(at.span, "dsl.raw-taint",
                   f"{what} '{roots[0]}', data from outside the workflow (run inputs, "
                   "webhook payloads, job results): whoever controls it can run any command",
                   hint % describe(value))
