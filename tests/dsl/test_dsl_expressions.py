"""Expressions parse to the core nodes and evaluate to what the source says."""
from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baseshift.core.expr import evaluate
from baseshift.dsl import parse_expression

SCOPE = {"input": {"amount": 12.5, "items": [{"sku": "a"}, {"sku": "b"}], "name": "Ada"},
         "charge": {"output": {"status": "ok"}, "state": "SUCCEEDED", "attempts": 1}}


@pytest.mark.parametrize(("text", "value"), [
    ("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("-2 * -3", 6), ("7 % 4", 3), ("1 / 2", 0.5),
    ("input.amount > 10 and charge.output.status == \"ok\"", True),
    ("not input.amount > 10 or false", False), ("input.items[1].sku", "b"),
    ('input["name"]', "Ada"), ('"a" in ["a", "b"]', True), ("len(input.items)", 2),
    ("max([1, 5, 2])", 5), ('upper(input.name) + "!"', "ADA!"), ("null == null", True),
    ('{ a: 1, "b c": [true] }', {"a": 1, "b c": [True]}), ('"${input.amount}"', 12.5),
    ('"total: ${input.amount * 2} for ${input.name}"', "total: 25 for Ada"),
    ('default(input.missing, "x")', "x"), ("[1, 2,]", [1, 2]), ("1e3", 1000.0),
])
def test_parse_then_evaluate(text: str, value: Any) -> None:
    assert evaluate(parse_expression(text), SCOPE) == value


Case = tuple[str, Any]
_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, ">=": operator.ge}
_LOGIC: dict[str, Callable[[Any, Any], Any]] = {
    "and": lambda a, b: a and b, "or": lambda a, b: a or b}
_leaves = st.integers(-50, 50).map(lambda n: (str(n) if n >= 0 else f"-{-n}", n))


def _node(ops: dict[str, Callable[[Any, Any], Any]], left: st.SearchStrategy[Case],
          right: st.SearchStrategy[Case]) -> st.SearchStrategy[Case]:
    def build(op: str, a: Case, b: Case) -> Case:
        return f"({a[0]} {op} {b[0]})", ops[op](a[1], b[1])
    return st.builds(build, st.sampled_from(sorted(ops)), left, right)


_numbers = st.recursive(_leaves, lambda c: _node(_ARITH, c, c), max_leaves=8)
_booleans = st.recursive(_node(_COMPARE, _numbers, _numbers),
                         lambda c: _node(_LOGIC, c, c), max_leaves=4)


@settings(max_examples=100, deadline=None)
@given(st.one_of(_numbers, _booleans))
def test_random_expressions_round_trip(case: Case) -> None:
    text, value = case
    assert evaluate(parse_expression(text), {}) == value
    assert evaluate(parse_expression(text.replace("(", "( ").replace(")", " )")), {}) == value
