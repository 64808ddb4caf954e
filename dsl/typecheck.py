"""Static checks of expressions: which names they read and whether their types fit.

`Checker.infer` walks an expression once, reports unknown names, unknown fields, bad
function calls and type errors, and returns the expression's static `Shape`; it records
the jobs an expression reads so the caller can check they run upstream.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from baseshift.core.diagnostics import Span
from baseshift.core.expr import (
    FUNCTION_ARITY,
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
    describe,
)
from baseshift.core.schema import (
    ANY,
    BOOLEAN,
    INTEGER,
    NUMBER,
    OBJECT,
    STRING,
    TypeRef,
    list_of,
    type_of_value,
)

from .report import Reporter, article, did_you_mean


@dataclass(frozen=True, slots=True)
class Shape:
    """A static type; records (`input`, a job, ...) also know which fields they have."""

    type: TypeRef
    fields: Mapping[str, Shape] | None = None
    what: str = ""
    code: str = "dsl.unknown-field"
    each: Shape | None = None  # the shape of any field (secret.X is a string)


ANY_SHAPE = Shape(ANY)
_NUMERIC = frozenset({"number", "integer"})


def shape_of(t: TypeRef) -> Shape:
    return ANY_SHAPE if t.name == "any" else Shape(t)


@dataclass(slots=True)
class Scope:
    """The root names an expression may use, and what to say about the others."""

    roots: Mapping[str, Shape]
    jobs: frozenset[str] = frozenset()  # root names that are jobs (references are recorded)
    elsewhere: Mapping[str, str] = field(default_factory=dict)  # name -> why it is not here


@dataclass(slots=True)
class Checker:
    """Infers shapes within one scope; `refs` collects (job, span) of every job read."""

    report: Reporter
    scope: Scope
    all_jobs: Sequence[str] = ()
    refs: list[tuple[str, Span]] = field(default_factory=list)

    def infer(self, e: Expr) -> Shape:
        method = _DISPATCH.get(type(e))
        return method(self, e) if method else ANY_SHAPE

    def _literal(self, e: Literal) -> Shape:
        return Shape(type_of_value(e.value))

    def _interp(self, e: Interp) -> Shape:
        shapes = [self.infer(p) for p in e.parts if not isinstance(p, str)]
        return shapes[0] if len(e.parts) == 1 and shapes else Shape(STRING)

    def _name(self, e: Name) -> Shape:
        shape = self.scope.roots.get(e.name)
        if shape is not None:
            if e.name in self.scope.jobs:
                self.refs.append((e.name, e.span))
            return shape
        self._unknown_root(e)
        return ANY_SHAPE

    def _unknown_root(self, e: Name) -> None:
        why = self.scope.elsewhere.get(e.name)
        if why is not None:
            self.report.error(e.span, "dsl.unknown-name", f"'{e.name}' {why}")
            return
        jobs = [j for j in self.all_jobs if j in self.scope.roots]
        hint = did_you_mean(e.name, jobs, "defined jobs")
        if hint and hint.startswith("did you mean"):
            self.report.error(e.span, "dsl.unknown-job", f"there is no job '{e.name}'", hint)
            return
        hint = did_you_mean(e.name, self.scope.roots, "names you can use here")
        self.report.error(e.span, "dsl.unknown-name", f"unknown name '{e.name}'", hint)

    def _attr(self, e: Attr) -> Shape:
        return self._field(self.infer(e.obj), e.name, e)

    def _field(self, shape: Shape, name: str, e: Expr) -> Shape:
        if shape.fields is not None:
            found = shape.fields.get(name)
            if found is None:
                self.report.error(e.span, shape.code, f"{shape.what} has no field '{name}'",
                                  did_you_mean(name, shape.fields, "its fields"))
                return ANY_SHAPE
            return found
        if shape.each is not None:
            return shape.each
        if shape.type.name not in ("any", "object", "null"):
            self.report.error(e.span, "dsl.type",
                              f"{describe(e)}: cannot read field '{name}' of {_a(shape)}")
        return ANY_SHAPE

    def _index(self, e: Index) -> Shape:
        shape, index = self.infer(e.obj), self.infer(e.index)
        if isinstance(e.index, Literal) and isinstance(e.index.value, str):
            if shape.fields is not None or shape.each is not None:
                return self._field(shape, e.index.value, e)
        kind = shape.type.name
        if kind in ("list", "string"):
            if index.type.name not in ("integer", "any"):
                self.report.error(e.index.span, "dsl.type",
                                  f"{kind} index must be an integer, not {_a(index)}")
            return Shape(shape.type.item or ANY) if kind == "list" else Shape(STRING)
        if kind not in ("any", "object", "null"):
            self.report.error(e.span, "dsl.type", f"{describe(e)}: cannot index {_a(shape)}")
        return ANY_SHAPE

    def _unary(self, e: Unary) -> Shape:
        operand = self.infer(e.operand)
        if e.op == "not":
            return Shape(BOOLEAN)
        if operand.type.name not in _NUMERIC and operand.type.name != "any":
            self.report.error(e.span, "dsl.type", f"'-' needs a number, not {_a(operand)}")
            return Shape(NUMBER)
        return operand

    def _binary(self, e: Binary) -> Shape:
        left, right = self.infer(e.left).type, self.infer(e.right).type
        rule = _BINARY_RULES[e.op]
        problem, result = rule(left, right)
        if problem:
            self.report.error(e.span, "dsl.type", f"{describe(e)}: {problem}")
        return shape_of(result)

    def _call(self, e: Call) -> Shape:
        args = [self.infer(a).type for a in e.args]
        if e.func not in FUNCTION_ARITY:
            self.report.error(e.span, "dsl.unknown-function", f"unknown function '{e.func}'",
                              did_you_mean(e.func, FUNCTION_ARITY, "functions"))
            return ANY_SHAPE
        low, high = FUNCTION_ARITY[e.func]
        if not low <= len(args) <= high:
            want = str(low) if low == high else f"{low} to {high}"
            self.report.error(e.span, "dsl.arity",
                              f"{e.func}() takes {want} argument{'s' * (high != 1)}, "
                              f"got {len(args)}")
            return ANY_SHAPE
        need, result = _SIGNATURES.get(e.func, ("", lambda a: ANY))
        if need and args and not _fits_kind(args[0], need):
            self.report.error(e.args[0].span, "dsl.type",
                              f"{e.func}() needs {_KIND_WORDS[need]}, not {_a(Shape(args[0]))}")
        else:
            problem = _argument_problem(e.func, args)
            if problem:
                self.report.error(e.span, "dsl.type", f"{describe(e)}: {problem}")
        return shape_of(result(args))

    def _list(self, e: ListExpr) -> Shape:
        items = [self.infer(i).type for i in e.items]
        return Shape(list_of(_join(items)))

    def _object(self, e: ObjectExpr) -> Shape:
        self.fields(e)
        return Shape(OBJECT)

    def fields(self, e: ObjectExpr) -> list[TypeRef]:
        """The type of each field's value, reporting keys given twice."""
        types = [self.infer(value).type for _, value in e.fields]
        if len(e.fields) > 1 and len({k for k, _ in e.fields}) < len(e.fields):
            seen: set[str] = set()
            for key, value in e.fields:
                if key in seen:
                    self.report.error(self.report.key_span(value), "dsl.duplicate",
                                      f"key '{key}' appears twice in this object")
                seen.add(key)
        return types


_DISPATCH: dict[type, Callable[[Checker, object], Shape]] = {
    Literal: Checker._literal, Interp: Checker._interp, Name: Checker._name,  # type: ignore
    Attr: Checker._attr, Index: Checker._index, Unary: Checker._unary,  # type: ignore
    Binary: Checker._binary, Call: Checker._call, ListExpr: Checker._list,  # type: ignore
    ObjectExpr: Checker._object,  # type: ignore
}


def _a(shape: Shape) -> str:
    return article(str(shape.type))


def _join(types: Sequence[TypeRef]) -> TypeRef:
    if not types:
        return ANY
    first = types[0]
    if all(t == first for t in types):
        return first
    if all(t.name in _NUMERIC for t in types):
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
    if kinds <= _NUMERIC or kinds == {"string"}:
        return None, BOOLEAN
    return f"cannot order {article(str(a))} and {article(str(b))}", BOOLEAN


def _plus(a: TypeRef, b: TypeRef) -> tuple[str | None, TypeRef]:
    kinds = {a.name, b.name}
    if kinds <= _NUMERIC:
        return None, INTEGER if kinds == {"integer"} else NUMBER
    if kinds == {"list"}:
        return None, list_of(_join([a.item or ANY, b.item or ANY]))
    if kinds - {"any"} in ({"string"}, {"list"}, set()):
        return None, a if a.name != "any" else b
    if kinds - {"any"} <= _NUMERIC:
        return None, NUMBER
    return f"cannot add {article(str(a))} and {article(str(b))}", ANY


def _arithmetic(op: str) -> Callable[[TypeRef, TypeRef], tuple[str | None, TypeRef]]:
    def rule(a: TypeRef, b: TypeRef) -> tuple[str | None, TypeRef]:
        bad = next((t for t in (a, b) if t.name not in _NUMERIC | {"any"}), None)
        if bad is not None:
            return f"'{op}' needs numbers, not {article(str(bad))}", NUMBER
        both_int = a.name == b.name == "integer" and op != "/"
        return None, INTEGER if both_int else NUMBER
    return rule


def _argument_problem(func: str, args: list[TypeRef]) -> str | None:
    """What the evaluator would always refuse in a call whose first argument has the right
    kind: adding up non-numbers, looking for a non-string in a string."""
    first = args[0] if args else ANY
    if func == "sum" and first.name == "list" and first.item is not None and \
            first.item.name not in _NUMERIC | {"any"}:
        return f"sum() needs a list of numbers, not {article(str(first))}"
    if func == "contains" and first.name == "string" and len(args) > 1 and \
            args[1].name not in ("string", "any"):
        return f"contains() on a string looks for a string, not {article(str(args[1]))}"
    return None


def _membership(a: TypeRef, b: TypeRef) -> tuple[str | None, TypeRef]:
    if b.name not in ("list", "object", "string", "any"):
        return f"'in' needs a list, object or string on its right, not {article(str(b))}", BOOLEAN
    if b.name == "string" and a.name not in ("string", "any"):
        return f"'in' a string needs a string on its left, not {article(str(a))}", BOOLEAN
    if b.name == "object" and a.name in ("list", "object"):
        return f"'in' an object looks up a key, not {article(str(a))}", BOOLEAN
    return None, BOOLEAN


def _logic(a: TypeRef, b: TypeRef) -> tuple[str | None, TypeRef]:
    return None, _join([a, b])


_BINARY_RULES: dict[str, Callable[[TypeRef, TypeRef], tuple[str | None, TypeRef]]] = {
    "==": _equality, "!=": _equality, "<": _ordering, "<=": _ordering, ">": _ordering,
    ">=": _ordering, "+": _plus, "-": _arithmetic("-"), "*": _arithmetic("*"),
    "/": _arithmetic("/"), "%": _arithmetic("%"), "in": _membership, "and": _logic,
    "or": _logic,
}

_KIND_WORDS = {"sized": "a string, list or object", "list": "a list", "number": "a number",
               "object": "an object"}


def _fits_kind(t: TypeRef, need: str) -> bool:
    allowed = {"sized": {"string", "list", "object"}, "list": {"list"}, "number": _NUMERIC,
               "object": {"object"}}[need]
    return t.name in allowed or t.name == "any"


def _item(args: list[TypeRef]) -> TypeRef:
    return (args[0].item or ANY) if args and args[0].name == "list" else ANY


_SIGNATURES: dict[str, tuple[str, Callable[[list[TypeRef]], TypeRef]]] = {
    "len": ("sized", lambda a: INTEGER),
    "all": ("list", lambda a: BOOLEAN),
    "any": ("list", lambda a: BOOLEAN),
    "sum": ("list", lambda a: NUMBER),
    "min": ("list", _item),
    "max": ("list", _item),
    "abs": ("number", lambda a: a[0] if a[0].name in _NUMERIC else NUMBER),
    "round": ("number", lambda a: INTEGER if len(a) == 1 else NUMBER),
    "lower": ("", lambda a: STRING),
    "upper": ("", lambda a: STRING),
    "string": ("", lambda a: STRING),
    "json": ("", lambda a: STRING),
    "number": ("", lambda a: NUMBER),
    "int": ("", lambda a: INTEGER),
    "keys": ("object", lambda a: list_of(STRING)),
    "values": ("object", lambda a: list_of(ANY)),
    "default": ("", lambda a: _join(a)),
    "join": ("list", lambda a: STRING),
    "split": ("", lambda a: list_of(STRING)),
    "contains": ("sized", lambda a: BOOLEAN),
    "pluck": ("list", lambda a: list_of(ANY)),
    "startswith": ("", lambda a: BOOLEAN),
    "endswith": ("", lambda a: BOOLEAN),
    "range": ("number", lambda a: list_of(INTEGER)),
}
