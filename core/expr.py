"""The expression language's syntax tree and its evaluator: a whitelist, never Python eval.

Workflow files are parsed (by `baseshift.dsl`) into these nodes; the engine evaluates them at
run time against a scope of plain JSON values (`input`, upstream jobs, the fan-out item, ...).
Only the node types below exist, so nothing but dictionary/list access, arithmetic,
comparisons, boolean logic and the functions in `FUNCTIONS` can ever run.
"""
from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .diagnostics import Span, article
from .errors import ExpressionError
from .shellquote import ShellText, Unquotable

NO_SPAN = Span(0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Literal:
    value: str | int | float | bool | None
    span: Span = NO_SPAN


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    span: Span = NO_SPAN


@dataclass(frozen=True, slots=True)
class Attr:
    obj: Expr
    name: str
    span: Span = NO_SPAN


@dataclass(frozen=True, slots=True)
class Index:
    obj: Expr
    index: Expr
    span: Span = NO_SPAN


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "not" | "-"
    operand: Expr
    span: Span = NO_SPAN


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # + - * / % == != < <= > >= and or in
    left: Expr
    right: Expr
    span: Span = NO_SPAN


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    args: tuple[Expr, ...]
    span: Span = NO_SPAN


@dataclass(frozen=True, slots=True)
class ListExpr:
    items: tuple[Expr, ...]
    span: Span = NO_SPAN


@dataclass(frozen=True, slots=True)
class ObjectExpr:
    fields: tuple[tuple[str, Expr], ...]
    span: Span = NO_SPAN

    def keys(self) -> list[str]:
        return [k for k, _ in self.fields]

    def get(self, key: str) -> Expr | None:
        return next((v for k, v in self.fields if k == key), None)


@dataclass(frozen=True, slots=True)
class Interp:
    """A string with `${...}` parts; a string that is exactly one `${x}` keeps x's type.

    `shell` names the setting when the string is a shell script (see `core.shellquote`):
    each part is then quoted as one word holding its value, `raw(x)` parts excepted, and
    even a lone `${x}` gives text."""

    parts: tuple[str | Expr, ...]
    span: Span = NO_SPAN
    shell: str = ""


Expr = Literal | Name | Attr | Index | Unary | Binary | Call | ListExpr | ObjectExpr | Interp


def _len(x: Any) -> int:
    if isinstance(x, str | list | dict):
        return len(x)
    raise ExpressionError(f"len() needs a string, list or object, not {type_name(x)}")


def _default(x: Any, fallback: Any) -> Any:
    return fallback if x is None else x


def _range(*args: Any) -> list[int]:
    values = range(*[int(a) for a in args])
    if len(values) > 100_000:
        raise ExpressionError("range() is limited to 100000 items")
    return list(values)


def _join(items: Any, sep: Any = ",") -> str:
    return str(sep).join(to_text(i) for i in _as_list(items, "join"))


def _as_list(x: Any, fn: str) -> list[Any]:
    if not isinstance(x, list):
        raise ExpressionError(f"{fn}() needs a list, not {type_name(x)}")
    return x


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": _len,
    "all": lambda xs: all(_as_list(xs, "all")),
    "any": lambda xs: any(_as_list(xs, "any")),
    "sum": lambda xs: sum(_as_list(xs, "sum")),
    "min": lambda xs: min(_as_list(xs, "min")),
    "max": lambda xs: max(_as_list(xs, "max")),
    "abs": abs,
    "round": lambda x, n=0: round(x, int(n)) if n else round(x),
    "lower": lambda s: to_text(s).lower(),
    "upper": lambda s: to_text(s).upper(),
    "string": lambda x: to_text(x),
    "number": lambda x: float(x),
    "int": lambda x: int(float(x)) if isinstance(x, str) else int(x),
    "keys": lambda d: list(d.keys()) if isinstance(d, dict) else _not_object("keys", d),
    "values": lambda d: list(d.values()) if isinstance(d, dict) else _not_object("values", d),
    "default": _default,
    "join": _join,
    "split": lambda s, sep=",": to_text(s).split(to_text(sep)),
    "contains": lambda c, x: x in c,
    "startswith": lambda s, p: to_text(s).startswith(to_text(p)),
    "endswith": lambda s, p: to_text(s).endswith(to_text(p)),
    "range": _range,
    "json": lambda x: json.dumps(x, separators=(",", ":")),
    "pluck": lambda xs, key: [x.get(str(key)) if isinstance(x, dict) else None
                              for x in _as_list(xs, "pluck")],
    "raw": lambda x: x,
}
"""Built-in functions; `FUNCTION_ARITY` says how many arguments each takes (min, max)."""

FUNCTION_ARITY: dict[str, tuple[int, int]] = {
    "len": (1, 1), "all": (1, 1), "any": (1, 1), "sum": (1, 1), "min": (1, 1), "max": (1, 1),
    "abs": (1, 1), "round": (1, 2), "lower": (1, 1), "upper": (1, 1), "string": (1, 1),
    "number": (1, 1), "int": (1, 1), "keys": (1, 1), "values": (1, 1), "default": (2, 2),
    "join": (1, 2), "split": (1, 2), "contains": (2, 2), "startswith": (2, 2),
    "endswith": (2, 2), "range": (1, 3), "json": (1, 1), "pluck": (2, 2),
    "raw": (1, 1),
}


def _not_object(fn: str, x: Any) -> Any:
    raise ExpressionError(f"{fn}() needs an object, not {type_name(x)}")


_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul,
    "/": operator.truediv, "%": operator.mod,
}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}


def type_name(x: Any) -> str:
    """The language's name for a runtime value's type."""
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "boolean"
    if isinstance(x, int | float):
        return "number"
    if isinstance(x, str):
        return "string"
    if isinstance(x, list):
        return "list"
    if isinstance(x, dict):
        return "object"
    return type(x).__name__


def to_text(x: Any) -> str:
    """How a value appears when interpolated into a string (JSON for lists and objects)."""
    if isinstance(x, str):
        return x
    if x is None:
        return ""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    if isinstance(x, list | dict):
        return json.dumps(x, separators=(",", ":"))
    return str(x)


def evaluate(expr: Expr, scope: Mapping[str, Any]) -> Any:
    """Evaluate `expr` against `scope`; errors become ExpressionError naming the problem."""
    try:
        return _eval(expr, scope)
    except ExpressionError:
        raise
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, RecursionError) as exc:
        raise ExpressionError(f"{describe(expr)}: {exc}") from None


def _eval(e: Expr, scope: Mapping[str, Any]) -> Any:  # noqa: C901 - one branch per node type
    match e:
        case Literal(value=v):
            return v
        case Name(name=n):
            if n not in scope:
                raise ExpressionError(f"unknown name '{n}'")
            return scope[n]
        case Attr(obj=o, name=n):
            return _attr(_eval(o, scope), n, e)
        case Index(obj=o, index=i):
            return _index(_eval(o, scope), _eval(i, scope), e)
        case Unary(op="not", operand=o):
            return not truthy(_eval(o, scope))
        case Unary(op="-", operand=o):
            return -_number(_eval(o, scope), "-")
        case Binary(op="and", left=l, right=r):
            return _eval(r, scope) if truthy(left := _eval(l, scope)) else left
        case Binary(op="or", left=l, right=r):
            return left if truthy(left := _eval(l, scope)) else _eval(r, scope)
        case Binary(op=op, left=l, right=r):
            return _binary(op, _eval(l, scope), _eval(r, scope))
        case Call(func=f, args=args):
            fn = scope.get("__functions__", FUNCTIONS).get(f)
            if fn is None:
                raise ExpressionError(f"unknown function '{f}'")
            return fn(*[_eval(a, scope) for a in args])
        case ListExpr(items=items):
            return [_eval(i, scope) for i in items]
        case ObjectExpr(fields=fields):
            return {k: _eval(v, scope) for k, v in fields}
        case Interp(parts=parts, shell=str() as setting) if setting:
            return _shell_text(parts, setting, scope)
        case Interp(parts=parts):
            if len(parts) == 1 and not isinstance(parts[0], str):
                return _eval(parts[0], scope)
            return "".join(p if isinstance(p, str) else to_text(_eval(p, scope)) for p in parts)
    raise ExpressionError(f"cannot evaluate {type(e).__name__}")


def is_raw(e: str | Expr) -> bool:
    """Whether an interpolated part is `raw(x)`: shell text spliced as written."""
    return isinstance(e, Call) and e.func == "raw" and len(e.args) == 1


def _shell_text(parts: tuple[str | Expr, ...], setting: str,
                scope: Mapping[str, Any]) -> str:
    script = ShellText()
    for part in parts:
        if isinstance(part, str):
            script.text(part)
        elif isinstance(part, Call) and is_raw(part):
            script.text(to_text(_eval(part.args[0], scope)))
        else:
            try:
                script.value(to_text(_eval(part, scope)))
            except Unquotable as exc:
                raise ExpressionError(f"setting '{setting}': ${{{describe(part)}}} {exc}") from None
    text = script.result()
    if "\x00" in text:
        raise ExpressionError(f"setting '{setting}' holds a NUL character, which no command "
                              "line can carry")
    return text


def truthy(x: Any) -> bool:
    return bool(x)


def condition(expr: Expr, scope: Mapping[str, Any]) -> bool:
    """Evaluate a `when` condition, which must be true or false.

    No other value stands for either (an empty string, 0, null): the checker refuses such
    conditions when it knows their type, and this refuses them when it could not.
    """
    value = evaluate(expr, scope)
    if not isinstance(value, bool):
        raise ExpressionError(f"{describe(expr)} is {article(type_name(value))}, not true or "
                              "false (compare it, e.g. with != \"\" or != null)")
    return value


def _attr(obj: Any, name: str, e: Expr) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    raise ExpressionError(f"{describe(e)}: cannot read field '{name}' of a {type_name(obj)}")


def _index(obj: Any, idx: Any, e: Expr) -> Any:
    if obj is None:
        return None
    if isinstance(obj, list | str):
        if isinstance(idx, float) and idx.is_integer():
            idx = int(idx)  # JSON does not tell 1 from 1.0
        if not isinstance(idx, int) or isinstance(idx, bool):
            raise ExpressionError(f"{describe(e)}: list index must be an integer")
        if not -len(obj) <= idx < len(obj):
            raise ExpressionError(f"{describe(e)}: index {idx} is out of range (length {len(obj)})")
        return obj[idx]
    if isinstance(obj, Mapping):
        return obj.get(to_text(idx))
    raise ExpressionError(f"{describe(e)}: cannot index a {type_name(obj)}")


def _number(x: Any, op: str) -> float | int:
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise ExpressionError(f"'{op}' needs a number, not {type_name(x)}")
    return x


def _binary(op: str, a: Any, b: Any) -> Any:
    if op in _COMPARE:
        if op in ("==", "!="):
            return _COMPARE[op](a, b)
        if type_name(a) != type_name(b) or a is None:
            raise ExpressionError(f"cannot compare {type_name(a)} {op} {type_name(b)}")
        return _COMPARE[op](a, b)
    if op == "in":
        if isinstance(b, str) and not isinstance(a, str):
            raise ExpressionError(f"'in' a string needs a string, not {type_name(a)}")
        if not isinstance(b, list | dict | str):
            raise ExpressionError(f"'in' needs a list, object or string, not {type_name(b)}")
        return a in b
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        return a + b
    if op == "+" and isinstance(a, list) and isinstance(b, list):
        return a + b
    return _ARITH[op](_number(a, op), _number(b, op))


def references(e: Expr) -> list[tuple[str, tuple[str, ...], Span]]:
    """Every root name an expression reads, with the literal field path after it.

    `charge.output.id` gives ("charge", ("output", "id")); used by the checker to find
    references to jobs and inputs without evaluating anything.
    """
    found: list[tuple[str, tuple[str, ...], Span]] = []
    _collect(e, found)
    return found


def _collect(e: Expr, out: list[tuple[str, tuple[str, ...], Span]]) -> None:
    path = _path(e)
    if path is not None:
        out.append(path)
        if isinstance(e, Index):
            _collect(e.index, out)
        return
    for child in children(e):
        _collect(child, out)


def _path(e: Expr) -> tuple[str, tuple[str, ...], Span] | None:
    fields: list[str] = []
    node: Expr = e
    while True:
        if isinstance(node, Attr):
            fields.append(node.name)
            node = node.obj
        elif isinstance(node, Index) and isinstance(node.index, Literal):
            fields.append(str(node.index.value))
            node = node.obj
        elif isinstance(node, Name):
            return node.name, tuple(reversed(fields)), node.span
        else:
            return None


def children(e: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of a node (for walking the tree)."""
    match e:
        case Attr(obj=o):
            return (o,)
        case Index(obj=o, index=i):
            return (o, i)
        case Unary(operand=o):
            return (o,)
        case Binary(left=l, right=r):
            return (l, r)
        case Call(args=a):
            return a
        case ListExpr(items=i):
            return i
        case ObjectExpr(fields=f):
            return tuple(v for _, v in f)
        case Interp(parts=p):
            return tuple(x for x in p if not isinstance(x, str))
    return ()


def describe(e: Expr) -> str:
    """Source-like text of an expression, for error messages."""
    match e:
        case Literal(value=v):
            return json.dumps(v)
        case Name(name=n):
            return n
        case Attr(obj=o, name=n):
            return f"{_operand(o, _POSTFIX)}.{n}"
        case Index(obj=o, index=i):
            return f"{_operand(o, _POSTFIX)}[{describe(i)}]"
        case Unary(op=op, operand=o):
            inner = _operand(o, _PRECEDENCE["not"] if op == "not" else _UNARY_MINUS)
            return f"not {inner}" if op == "not" else f"-{inner}"
        case Binary(op=op, left=l, right=r):
            level = _PRECEDENCE[op]
            return f"{_operand(l, level)} {op} {_operand(r, level + 1)}"
        case Call(func=f, args=a):
            return f"{f}({', '.join(describe(x) for x in a)})"
        case ListExpr(items=i):
            return f"[{', '.join(describe(x) for x in i)}]"
        case ObjectExpr(fields=f):
            return "{" + ", ".join(f"{k}: {describe(v)}" for k, v in f) + "}"
        case Interp(parts=p):
            return json.dumps("".join(x if isinstance(x, str) else "${" + describe(x) + "}"
                                      for x in p))
    return "?"


_PRECEDENCE = {"or": 1, "and": 2, "not": 3, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4,
               ">=": 4, "in": 4, "+": 5, "-": 5, "*": 6, "/": 6, "%": 6}
_UNARY_MINUS = 7  # binds tighter than every binary operator
_POSTFIX = 8  # .field and [index] bind tightest


def _operand(e: Expr, level: int) -> str:
    """An operand as written, in parentheses when it binds more loosely than `level`."""
    if isinstance(e, Binary):
        own = _PRECEDENCE[e.op]
    elif isinstance(e, Unary):
        own = _PRECEDENCE["not"] if e.op == "not" else _UNARY_MINUS
    else:
        return describe(e)
    return f"({describe(e)})" if own < level else describe(e)


def to_json(e: Expr) -> Any:
    """A stable JSON form of an expression for `baseshift plan --format json` and golden files."""
    if isinstance(e, Literal):
        return e.value if not isinstance(e.value, str) else {"str": e.value}
    if isinstance(e, ObjectExpr):
        return {"object": {k: to_json(v) for k, v in e.fields}}
    if isinstance(e, ListExpr):
        return {"list": [to_json(i) for i in e.items]}
    return {"expr": describe(e)}
