"""Property: an expression the checker accepts does not fail at run time for type reasons.

Hypothesis builds expressions over inputs of every type (optional ones absent, i.e. null,
or present), checks them as a workflow output, and evaluates the accepted ones with
core.expr against values of the declared types. Only value-dependent failures (an index
out of range, a division by zero, number("abc")) may remain, so those forms are left
out of the generated language, and so are objects: their fields are `any`, which the
checker leaves to run time by design, like the items of a list that mixes types.
"""
from __future__ import annotations

from typing import Any

from dsl_helpers import compile_text
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from baseshift.core.errors import ExpressionError
from baseshift.core.expr import evaluate
from baseshift.dsl.parser import parse_expression

INPUTS = {  # name: (declaration, a value of that type)
    "s": ('s: string = "ab"', "ab"),
    "n": ("n: integer = 2", 2),
    "x": ("x: number = 1.5", 1.5),
    "b": ("b: boolean = true", True),
    "xs": ('xs: list<string> = ["a"]', ["a"]),
    "os": ("os?: string", None),
    "on": ("on?: integer", None),
    "ob": ("ob?: boolean", None),
    "oxs": ("oxs?: list<integer>", None),
}
DECLARATIONS = ", ".join(d for d, _ in INPUTS.values())
VALUES = {name: v for name, (_, v) in INPUTS.items()}

LEAVES = st.sampled_from([f"input.{n}" for n in INPUTS] + ['"t"', "3", "0.5", "true", "null"])
UNARY = ["len", "lower", "string", "sum", "abs", "keys", "all", "join", "json", "round",
         "min"]
BINARY_CALLS = ["default", "contains", "startswith", "pluck"]
OPERATORS = ["+", "-", "*", "==", "!=", "<", ">=", "and", "or", "in"]


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, st.sampled_from(OPERATORS), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(UNARY), inner).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(st.sampled_from(BINARY_CALLS), inner, inner).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        inner.map(lambda e: f"(not {e})"),
        inner.map(lambda e: f"(-{e})"),
        inner.map(lambda e: f"{e}.k"),
    )


EXPRESSIONS = st.recursive(LEAVES, _extend, max_leaves=4)


def _accepted(expr: str) -> bool:
    source = ('workflow w {\n  version "1.0.0"\n'
              f"  input {{ {DECLARATIONS} }}\n"
              '  job a uses shell { with { command: "true" } }\n'
              f"  output {{ v: {expr} }}\n}}\n")
    return compile_text(source).ok


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS)
@example("contains(input.s, input.os)")  # found by this test: null looked for in a string
@example("sum(pluck(input.xs, input.s))")  # and a field read of strings (nulls)
def test_what_check_accepts_evaluates(expr: str) -> None:
    if not _accepted(expr):
        return
    scope: dict[str, Any] = {"input": VALUES}
    try:
        evaluate(parse_expression(expr), scope)
    except ExpressionError as exc:
        raise AssertionError(f"check accepts {expr} but it fails at run time: {exc}") from None
