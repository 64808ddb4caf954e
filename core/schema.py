"""Value types of the language (string, number, list<T>, ...): checking values, JSON Schema."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .diagnostics import article
from .errors import InputError

SCALARS = ("string", "number", "integer", "boolean", "object", "any", "null")


@dataclass(frozen=True, slots=True)
class TypeRef:
    """A declared type: a scalar name, or `list` with an item type."""

    name: str
    item: TypeRef | None = None

    def __str__(self) -> str:
        return f"list<{self.item}>" if self.name == "list" and self.item else self.name

    def accepts(self, other: TypeRef) -> bool:
        """Whether a value statically known to be `other` may be used where `self` is wanted."""
        if "any" in (self.name, other.name):
            return True
        if self.name == "number" and other.name == "integer":
            return True
        if self.name != other.name:
            return False
        if self.name == "list" and self.item and other.item:
            return self.item.accepts(other.item)
        return True


ANY = TypeRef("any")
STRING = TypeRef("string")
NUMBER = TypeRef("number")
INTEGER = TypeRef("integer")
BOOLEAN = TypeRef("boolean")
OBJECT = TypeRef("object")
NULL = TypeRef("null")


def list_of(item: TypeRef) -> TypeRef:
    return TypeRef("list", item)


def type_of_value(value: Any) -> TypeRef:
    """The static type of a literal value."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER
    if isinstance(value, float):
        return NUMBER
    if isinstance(value, str):
        return STRING
    if isinstance(value, list):
        return list_of(ANY)
    return OBJECT


def coerce(t: TypeRef, value: Any, where: str) -> Any:
    """Check `value` against `t`, converting command-line strings where that is unambiguous.

    Raises InputError naming `where` (e.g. "input 'amount'") when the value does not fit.
    """
    if t.name == "any":
        return value
    if isinstance(value, str) and t.name in ("number", "integer", "boolean"):
        value = _from_text(t, value, where)
    elif isinstance(value, str) and t.name in ("list", "object"):
        value = _json_text(t, value, where)
    ok = _matches(t, value)
    if not ok:
        raise InputError(f"{where} must be {article(str(t))}, got {_describe(value)}")
    if t.name == "list" and t.item is not None:
        return [coerce(t.item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _matches(t: TypeRef, value: Any) -> bool:
    if t.name == "string":
        return isinstance(value, str)
    if t.name == "boolean":
        return isinstance(value, bool)
    if t.name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t.name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if t.name == "object":
        return isinstance(value, dict)
    if t.name == "list":
        return isinstance(value, list)
    if t.name == "null":
        return value is None
    return True


def _from_text(t: TypeRef, text: str, where: str) -> Any:
    try:
        if t.name == "integer":
            return int(text)
        if t.name == "number":
            number = float(text)
            return int(number) if number.is_integer() and "." not in text else number
    except ValueError:
        raise InputError(f"{where} must be {article(str(t))}, got {text!r}") from None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    raise InputError(f"{where} must be a boolean (true or false), got {text!r}")


def _json_text(t: TypeRef, text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where} must be {article(str(t))} written as JSON ({exc.msg})") from None


def _describe(value: Any) -> str:
    from .expr import type_name

    if isinstance(value, dict | list):
        return type_name(value)
    return f"{type_name(value)} {value!r}"


def to_json_schema(t: TypeRef) -> dict[str, Any]:
    """The JSON Schema for a type (used for template input/output schemas)."""
    if t.name == "any":
        return {}
    if t.name == "list":
        return {"type": "array", "items": to_json_schema(t.item or ANY)}
    return {"type": t.name}


def secret_schema(schema: dict[str, Any], t: TypeRef) -> dict[str, Any]:
    """`schema` (of a value of type `t`) marked as a secret: `writeOnly`, and for text the
    `password` format (forms hide what is typed)."""
    return {**schema, "writeOnly": True, **({"format": "password"} if t.name == "string" else {})}


def from_json_schema(schema: dict[str, Any]) -> TypeRef:
    """The static type a JSON Schema fragment describes, as far as the checker cares."""
    kind = schema.get("type")
    if kind == "array":
        return list_of(from_json_schema(schema.get("items", {})))
    if isinstance(kind, str) and kind in SCALARS:
        return TypeRef(kind)
    return ANY
