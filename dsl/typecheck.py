"""Static checks of expressions: which names they read and whether their types fit.

`Checker.infer` walks an expression once, reports unknown names, unknown fields, bad
function calls and type errors, and returns the expression's static `Shape`; it records
the jobs an expression reads so the caller can check they run upstream. A shape is what
the evaluator in core.expr will produce: a value that may be null at run time (an optional
input) says so, and so does every field read through it, because `.field` of null is null.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from baseshift.core.diagnostics import Span, article
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
    NUMBER,
    OBJECT,
    STRING,
    TypeRef,
    list_of,
    type_of_value,
)

from .report import Reporter, did_you_mean
from .typerules import (
    BINARY_RULES,
    KIND_WORDS,
    LOGIC,
    NULL_REFUSED,
    NULL_REFUSING_CALLS,
    NUMERIC,
    SIGNATURES,
    argument_problem,
    fits_kind,
    join,
)


@dataclass(frozen=True, slots=True)
class Shape:
    """A static type; records (`input`, a job, ...) also know which fields they have."""

    type: TypeRef
    fields: Mapping[str, Shape] | None = None
    what: str = ""
    code: str = "dsl.unknown-field"
    each: Shape | None = None  # the shape of any field (secret.X is a string)
    items: Shape | None = None  # the shape of each item of a list (a fan-out's outputs)
    null_when: str = ""  # why the value may be null at run time; "" when it cannot be


ANY_SHAPE = Shape(ANY)


def shape_of(t: TypeRef, null_when: str = "") -> Shape:
    """The shape of a value of type `t` (`any` already includes null)."""
    return ANY_SHAPE if t.name == "any" else Shape(t, null_when=null_when)


def maybe_null(shape: Shape, why: str) -> Shape:
    """`shape`, read through a value that may be null (`why`): null-safe reads give null."""
    if not why or shape.null_when or shape.type.name in ("any", "null"):
        return shape
    return dataclasses.replace(shape, null_when=why)


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

    def present(self, e: Expr, shape: Shape, taker: str) -> bool:
        """Report a value that may be null where `taker` fails on null; True if it cannot be."""
        if not shape.null_when:
            return True
        text = describe(e)
        self.report.error(e.span, "dsl.nullable",
                          f"{text} may be null ({shape.null_when}), which {taker} cannot take",
                          f"choose a value for null: default({text}, {_placeholder(shape.type)})")
        return False

    def condition(self, e: Expr, where: str) -> Shape:
        """Infer a condition: it must be true or false; no other value counts as either."""
        shape = self.infer(e)
        self.truth(e, shape, where)
        return shape

    def truth(self, e: Expr, shape: Shape, where: str) -> None:
        """Report a value used as true/false that is not a boolean (there is no truthiness)."""
        kind = shape.type.name
        if kind not in ("boolean", "any"):
            self.report.error(e.span, "dsl.condition",
                              f"{where} must be true or false, not {_a(shape)}: {describe(e)}",
                              _comparison_hint(e, shape.type))
        else:
            self.present(e, shape, where)

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

    def _field(self, shape: Shape, name: str, e: Attr | Index) -> Shape:
        if shape.fields is not None:
            found = shape.fields.get(name)
            if found is None:
                self.report.error(e.span, shape.code, f"{shape.what} has no field '{name}'",
                                  did_you_mean(name, shape.fields, "its fields"))
                return ANY_SHAPE
            return maybe_null(found, shape.null_when)
        if shape.each is not None:
            return maybe_null(shape.each, shape.null_when)
        if shape.type.name == "null":
            return shape  # a field of null is null
        if shape.type.name not in ("any", "object"):
            self._not_a_record(shape, name, e)
        return ANY_SHAPE

    def _not_a_record(self, shape: Shape, name: str, e: Attr | Index) -> None:
        whose = f" ({shape.what})" if shape.what else ""
        hint = None
        if shape.type.name == "list":
            obj = describe(e.obj)
            hint = (f"read one item, {obj}[0].{name}, or the field of every item, "
                    f"pluck({obj}, \"{name}\")")
        self.report.error(e.span, "dsl.type",
                          f"{describe(e)}: cannot read field '{name}' of {_a(shape)}{whose}", hint)

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
            else:
                self.present(e.index, index, f"{kind} index")
            if kind == "string":
                return maybe_null(Shape(STRING), shape.null_when)
            return maybe_null(shape.items or shape_of(shape.type.item or ANY), shape.null_when)
        if kind == "null":
            return shape  # an item of null is null
        if kind not in ("any", "object"):
            self.report.error(e.span, "dsl.type", f"{describe(e)}: cannot index {_a(shape)}")
        return ANY_SHAPE

    def _unary(self, e: Unary) -> Shape:
        operand = self.infer(e.operand)
        if e.op == "not":
            self.truth(e.operand, operand, "the operand of 'not'")
            return Shape(BOOLEAN)
        if operand.type.name not in NUMERIC and operand.type.name != "any":
            self.report.error(e.span, "dsl.type", f"'-' needs a number, not {_a(operand)}")
            return Shape(NUMBER)
        self.present(e.operand, operand, "'-'")
        return dataclasses.replace(operand, null_when="")

    def _binary(self, e: Binary) -> Shape:
        left, right = self.infer(e.left), self.infer(e.right)
        problem, result = BINARY_RULES[e.op](left.type, right.type)
        if e.op in LOGIC:
            for side, shape in ((e.left, left), (e.right, right)):
                self.truth(side, shape, f"each side of '{e.op}'")
        elif problem:
            self.report.error(e.span, "dsl.type", f"{describe(e)}: {problem}")
        elif e.op in NULL_REFUSED:
            for side, shape in ((e.left, left), (e.right, right)):
                self.present(side, shape, f"'{e.op}'")
            self._zero_divisor(e)
        elif e.op == "in" and self.present(e.right, right, "the right side of 'in'") \
                and right.type.name == "string":
            self.present(e.left, left, "'in' a string")
        return shape_of(result)

    def _zero_divisor(self, e: Binary) -> None:
        if e.op in ("/", "%") and isinstance(e.right, Literal) and e.right.value == 0 \
                and not isinstance(e.right.value, bool):
            self.report.error(e.right.span, "dsl.type", f"{describe(e)}: division by zero",
                              "this always fails at run time; divide by another number")

    def _call(self, e: Call) -> Shape:
        shapes = [self.infer(a) for a in e.args]
        args = [s.type for s in shapes]
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
        need, result = SIGNATURES.get(e.func, ("", lambda a: ANY))
        if need and args and not fits_kind(args[0], need):
            self.report.error(e.args[0].span, "dsl.type",
                              f"{e.func}() needs {KIND_WORDS[need]}, not {_a(shapes[0])}")
        elif e.func not in NULL_REFUSING_CALLS or \
                self.present(e.args[0], shapes[0], f"{e.func}()"):
            problem = argument_problem(e.func, args)
            if problem:
                hint = None
                if e.func == "default":
                    hint = (f"give a fallback of the same type: default({describe(e.args[0])}, "
                            f"{_placeholder(args[0])})")
                self.report.error(e.span, "dsl.type", f"{describe(e)}: {problem}", hint)
            elif e.func == "contains" and len(args) > 1 and args[0].name == "string":
                self.present(e.args[1], shapes[1], "contains() in a string")  # as 'in' does
        return self._result(e.func, shapes, result(args))

    @staticmethod
    def _result(func: str, shapes: list[Shape], result: TypeRef) -> Shape:
        if func in ("min", "max") and shapes[0].items is not None:
            return shapes[0].items
        if func == "default":
            value, fallback = shapes
            if value.type.name == "null":
                return fallback
            if not value.null_when or fallback.type.name == "null":
                return value  # never null: the fallback is never used (or null itself)
            return shape_of(result, fallback.null_when)
        return shape_of(result)

    def _list(self, e: ListExpr) -> Shape:
        items = [self.infer(i).type for i in e.items]
        return Shape(list_of(join(items)))

    def _object(self, e: ObjectExpr) -> Shape:
        self.fields(e)
        return Shape(OBJECT)

    def fields(self, e: ObjectExpr) -> list[TypeRef]:
        """The type of each field's value, reporting keys given twice."""
        return [s.type for s in self.field_shapes(e)]

    def field_shapes(self, e: ObjectExpr) -> list[Shape]:
        """The shape of each field's value, reporting keys given twice."""
        shapes = [self.infer(value) for _, value in e.fields]
        if len(e.fields) > 1 and len({k for k, _ in e.fields}) < len(e.fields):
            seen: set[str] = set()
            for key, value in e.fields:
                if key in seen:
                    self.report.error(self.report.key_span(value), "dsl.duplicate",
                                      f"key '{key}' appears twice in this object")
                seen.add(key)
        return shapes


_DISPATCH: dict[type, Callable[[Checker, object], Shape]] = {
    Literal: Checker._literal, Interp: Checker._interp, Name: Checker._name,  # type: ignore
    Attr: Checker._attr, Index: Checker._index, Unary: Checker._unary,  # type: ignore
    Binary: Checker._binary, Call: Checker._call, ListExpr: Checker._list,  # type: ignore
    ObjectExpr: Checker._object,  # type: ignore
}


def _a(shape: Shape) -> str:
    return article(str(shape.type))


_PLACEHOLDERS = {"string": '""', "number": "0", "integer": "0", "boolean": "false",
                 "list": "[]", "object": "{}"}


def _placeholder(t: TypeRef) -> str:
    return _PLACEHOLDERS.get(t.name, "...")


def _comparison_hint(e: Expr, t: TypeRef) -> str:
    """How to say what a non-boolean condition meant, as a comparison."""
    text = describe(e)
    if " " in text and not text.startswith(("(", "[", "{")):
        text = f"({text})"
    if t.name in ("list", "object"):
        return f"test its size: len({text}) > 0"
    if t.name == "null":
        return "write true or false"
    return f"compare it: {text} != {_placeholder(t)}"
