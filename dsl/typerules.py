"""The static type rules of operators and built-in functions, one per rule of core.expr.

Each rule answers what the evaluator would always refuse for operands of known types (a
problem in words, or None) and the type of the result; `any` operands are never refused.
Null is handled by the checker (a value that *may* be null), not here.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from baseshift.core.diagnostics import article
from baseshift.core.schema import (
    ANY,
    BOOLEAN,
    INTEGER,
    NUMBER,
    STRING,
    TypeRef,
    list_of,
)

Rule = Callable[[TypeRef, TypeRef], tuple[str | None, TypeRef]]

NUMERIC = frozenset({"number", "integer"})
LOGIC = frozenset({"and", "or"})
NULL_REFUSED = frozenset({"+", "-", "*", "/", "%", "<", "<=", ">", ">="})
"""Binary operators whose evaluation fails on a null operand (`==`, `!=` compare it)."""

NULL_REFUSING_CALLS = frozenset({"len", "all", "any", "sum", "min", "max", "abs", "round",
                                 "number", "int", "keys", "values", "join", "contains",
                                 "pluck", "range"})
"""Functions that fail when their first argument is null (the others turn it into "")."""


def join(types: Sequence[TypeRef]) -> TypeRef:
    """The one type that describes values of all `types` (`any` when they differ)."""
    if not types:
        return ANY
    first = types[0]
    if all(t == first for t in types):
        return first
    if all(t.name in NUMERIC for t in types):
        return NUMBER
    return ANY


def _known(*types: TypeRef) -> bool:
    return all(t.name != "any" for t in types)


def _equality(a: TypeRef, b: TypeRef) -> tuple[str | None, TypeRef]:
    if _known(a, b) and "null" not in (a.name, b.name) and not (a.accepts(b) or b.accepts(a)):
        return f"comparing {article(str(a))} with {article(str(b))} is always false", BOOLEAN
    return None, BOOLEAN


def _ordering(a: TypeRef, b: TypeRef) -> tuple[str | None, TypeRef]:
    kinds = {a.name, b.name} - {"any"}
    if kinds <= NUMERIC or kinds == {"string"}:
        return None, BOOLEAN
    return f"cannot order {article(str(a))} and {article(str(b))}", BOOLEAN


def _plus(a: TypeRef, b: TypeRef) -> tuple[str | None, TypeRef]:
    kinds = {a.name, b.name}
    if kinds <= NUMERIC:
        return None, INTEGER if kinds == {"integer"} else NUMBER
    if kinds == {"list"}:
        return None, list_of(join([a.item or ANY, b.item or ANY]))
    if kinds - {"any"} in ({"string"}, {"list"}, set()):
        return None, a if a.name != "any" else b
    if kinds - {"any"} <= NUMERIC:
        return None, NUMBER
    return f"cannot add {article(str(a))} and {article(str(b))}", ANY


def _arithmetic(op: str) -> Rule:
    def rule(a: TypeRef, b: TypeRef) -> tuple[str | None, TypeRef]:
        bad = next((t for t in (a, b) if t.name not in NUMERIC | {"any"}), None)
        if bad is not None:
            return f"'{op}' needs numbers, not {article(str(bad))}", NUMBER
        both_int = a.name == b.name == "integer" and op != "/"
        return None, INTEGER if both_int else NUMBER
    return rule


def membership(a: TypeRef, b: TypeRef) -> tuple[str | None, TypeRef]:
    """`a in b` (and `contains(b, a)`): what Python's `in` refuses for these types."""
    if b.name not in ("list", "object", "string", "any"):
        return f"'in' needs a list, object or string on its right, not {article(str(b))}", BOOLEAN
    if b.name == "string" and a.name not in ("string", "any"):
        return f"'in' a string needs a string on its left, not {article(str(a))}", BOOLEAN
    if b.name == "object" and a.name in ("list", "object"):
        return f"'in' an object looks up a key, not {article(str(a))}", BOOLEAN
    return None, BOOLEAN


def _logic(a: TypeRef, b: TypeRef) -> tuple[str | None, TypeRef]:
    return None, join([a, b])  # the checker asks each side to be true or false


BINARY_RULES: dict[str, Rule] = {
    "==": _equality, "!=": _equality, "<": _ordering, "<=": _ordering, ">": _ordering,
    ">=": _ordering, "+": _plus, "-": _arithmetic("-"), "*": _arithmetic("*"),
    "/": _arithmetic("/"), "%": _arithmetic("%"), "in": membership, "and": _logic,
    "or": _logic,
}

KIND_WORDS = {"sized": "a string, list or object", "list": "a list", "number": "a number",
              "object": "an object", "scalar": "a string, number or boolean"}
_KINDS = {"sized": {"string", "list", "object"}, "list": {"list"}, "number": NUMERIC,
          "object": {"object"}, "scalar": {"string", "number", "integer", "boolean"}}


def fits_kind(t: TypeRef, need: str) -> bool:
    """Whether a first argument of type `t` is of the kind a function needs."""
    return t.name in _KINDS[need] or t.name == "any"


def argument_problem(func: str, args: list[TypeRef]) -> str | None:
    """What the evaluator would always refuse in a call whose first argument has the right
    kind: adding up non-numbers, looking for something `in` cannot look for."""
    first = args[0] if args else ANY
    if func == "sum" and first.name == "list" and first.item is not None and \
            first.item.name not in NUMERIC | {"any"}:
        return f"sum() needs a list of numbers, not {article(str(first))}"
    if func == "pluck" and first.name == "list" and first.item is not None and \
            first.item.name not in ("object", "any"):
        return f"pluck() reads a field of each item: it needs a list of objects, not " \
               f"{article(str(first))}"
    if func == "default" and len(args) > 1 and _known(first, args[1]) and \
            "null" not in (first.name, args[1].name) and \
            not (first.accepts(args[1]) or args[1].accepts(first)):
        return f"the fallback is {article(str(args[1]))}, the value {article(str(first))}"
    if func == "contains" and len(args) > 1:
        problem, _ = membership(args[1], first)
        if problem:
            return f"contains() cannot look for {article(str(args[1]))} in {article(str(first))}"
    return None


def _item(args: list[TypeRef]) -> TypeRef:
    return (args[0].item or ANY) if args and args[0].name == "list" else ANY


SIGNATURES: dict[str, tuple[str, Callable[[list[TypeRef]], TypeRef]]] = {
    "len": ("sized", lambda a: INTEGER),
    "all": ("list", lambda a: BOOLEAN),
    "any": ("list", lambda a: BOOLEAN),
    "sum": ("list", lambda a: NUMBER),
    "min": ("list", _item),
    "max": ("list", _item),
    "abs": ("number", lambda a: a[0] if a[0].name in NUMERIC else NUMBER),
    "round": ("number", lambda a: INTEGER if len(a) == 1 else NUMBER),
    "lower": ("", lambda a: STRING),
    "upper": ("", lambda a: STRING),
    "string": ("", lambda a: STRING),
    "json": ("", lambda a: STRING),
    "number": ("scalar", lambda a: NUMBER),
    "int": ("scalar", lambda a: INTEGER),
    "keys": ("object", lambda a: list_of(STRING)),
    "values": ("object", lambda a: list_of(ANY)),
    "default": ("", lambda a: join(a)),
    "join": ("list", lambda a: STRING),
    "split": ("", lambda a: list_of(STRING)),
    "contains": ("sized", lambda a: BOOLEAN),
    "pluck": ("list", lambda a: list_of(ANY)),
    "startswith": ("", lambda a: BOOLEAN),
    "endswith": ("", lambda a: BOOLEAN),
    "range": ("number", lambda a: list_of(INTEGER)),
    "raw": ("", lambda a: a[0] if a else ANY),
}
"""Per function: the kind its first argument needs ("" for any) and its result type."""
