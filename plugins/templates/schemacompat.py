"""Whether a new version of a template keeps its callers working: JSON Schema compatibility.

Inputs are read contravariantly (the new inputSchema must accept every value the old one
accepted) and outputs covariantly (the old outputSchema must accept every value the new one
may produce). Both are the same question, "does schema A accept all of schema B?", asked
with the roles swapped; `Side` words the answers for the side being compared.

The rules are conservative: a change they cannot prove safe (a new `pattern`, a changed
`format`) is reported as breaking.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

JSON_TYPES = ("array", "boolean", "integer", "null", "number", "object", "string")
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_EXACT = ("pattern", "format", "multipleOf", "uniqueItems")


@dataclass(frozen=True, slots=True)
class Side:
    """How to word a difference: for inputs the wide schema is the new one, for outputs the
    old one (`accepting`); the other is `accepted`."""

    kind: str  # "input" | "output"

    def where(self, path: str) -> str:
        return f"{self.kind} '{path}'" if path else f"the {self.kind}"


INPUT = Side("input")
OUTPUT = Side("output")


def breaking_changes(old_input: Mapping[str, Any], old_output: Mapping[str, Any],
                     new_input: Mapping[str, Any], new_output: Mapping[str, Any]) -> list[str]:
    """Why callers of the old version would break on the new one; empty when compatible."""
    return [*input_changes(old_input, new_input), *output_changes(old_output, new_output)]


def input_changes(old: Mapping[str, Any] | bool, new: Mapping[str, Any] | bool) -> list[str]:
    """Reasons an old caller's inputs may be refused by the new inputSchema."""
    return list(_covers(_norm(new), _norm(old), "", INPUT))


def output_changes(old: Mapping[str, Any] | bool, new: Mapping[str, Any] | bool) -> list[str]:
    """Reasons the new version's outputs may break what callers of the old one expect."""
    return list(_covers(_norm(old), _norm(new), "", OUTPUT))


def _norm(schema: Mapping[str, Any] | bool | Any) -> Mapping[str, Any]:
    if schema is False:
        return {"not": {}}
    return schema if isinstance(schema, Mapping) else {}


def _covers(wide: Mapping[str, Any], narrow: Mapping[str, Any], path: str,
            side: Side) -> Iterator[str]:
    """Differences by which `wide` may refuse a value that `narrow` accepts."""
    if narrow.get("not") == {}:
        return  # accepts nothing: any schema covers it
    if wide.get("not") == {}:
        yield f"{side.where(path)} accepts nothing any more"
        return
    if "anyOf" in wide or "anyOf" in narrow or "oneOf" in wide or "oneOf" in narrow:
        yield from _union(wide, narrow, path, side)
        return
    yield from _types(wide, narrow, path, side)
    yield from _enums(wide, narrow, path, side)
    yield from _bounds(wide, narrow, path, side)
    yield from _object(wide, narrow, path, side)
    if isinstance(wide.get("items"), Mapping | bool):
        yield from _covers(_norm(wide["items"]), _norm(narrow.get("items", {})),
                           f"{path}[]", side)


def _branches(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    key = "anyOf" if "anyOf" in schema else "oneOf" if "oneOf" in schema else None
    if key is None or not isinstance(schema[key], list):
        return [schema]
    rest = {k: v for k, v in schema.items() if k != key}
    return [{**rest, **_norm(b)} for b in schema[key]]


def _union(wide: Mapping[str, Any], narrow: Mapping[str, Any], path: str,
           side: Side) -> Iterator[str]:
    """Each branch of `narrow` must be covered by some branch of `wide`."""
    options = _branches(wide)
    for branch in _branches(narrow):
        attempts = [list(_covers(w, branch, path, side)) for w in options]
        if all(attempts):
            yield min(attempts, key=len)[0]


def _type_set(schema: Mapping[str, Any]) -> set[str] | None:
    kind = schema.get("type")
    if kind is None:
        return None
    return {kind} if isinstance(kind, str) else {k for k in kind if isinstance(k, str)}


def _has_type(types: set[str], t: str) -> bool:
    return t in types or (t == "integer" and "number" in types)


def _types(wide: Mapping[str, Any], narrow: Mapping[str, Any], path: str,
           side: Side) -> Iterator[str]:
    w, n = _type_set(wide), _type_set(narrow)
    if w is None:
        return
    if n is None:
        yield _type_reason(side, path, "any type", w)
        return
    lost = sorted(t for t in n if not _has_type(w, t))
    if lost:
        yield _type_reason(side, path, " or ".join(lost), w)


def _type_reason(side: Side, path: str, lost: str, kept: set[str]) -> str:
    kept_text = " or ".join(sorted(kept))
    if side is INPUT:
        return f"{side.where(path)} no longer accepts {lost} (now {kept_text} only)"
    return f"{side.where(path)} may now be {lost}, callers expect {kept_text}"


def _allowed(schema: Mapping[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    enum = schema.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 equals 1.0, but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _enums(wide: Mapping[str, Any], narrow: Mapping[str, Any], path: str,
           side: Side) -> Iterator[str]:
    w, n = _allowed(wide), _allowed(narrow)
    if w is None:
        return
    if n is None:
        if side is INPUT:
            yield f"{side.where(path)} is now limited to {_values(w)}"
        else:
            yield f"{side.where(path)} is no longer limited to {_values(w)}"
        return
    lost = [v for v in n if not any(_same(v, x) for x in w)]
    if lost and side is INPUT:
        yield f"{side.where(path)} no longer accepts {_values(lost)}"
    elif lost:
        yield f"{side.where(path)} may now be {_values(lost)}, callers expect {_values(w)}"


def _values(values: list[Any]) -> str:
    return ", ".join(repr(v) for v in values)


def _bounds(wide: Mapping[str, Any], narrow: Mapping[str, Any], path: str,
            side: Side) -> Iterator[str]:
    for key in _LOWER_BOUNDS + _UPPER_BOUNDS:
        if key not in wide or not _number(wide[key]):
            continue
        limit, other = wide[key], narrow.get(key)
        looser = other is None or not _number(other) or (
            other < limit if key in _LOWER_BOUNDS else other > limit)
        if looser:
            yield _bound_reason(side, path, key, other, limit)
    for key in _EXACT:
        if key in wide and wide[key] != narrow.get(key):
            yield _bound_reason(side, path, key, narrow.get(key), wide[key])


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _bound_reason(side: Side, path: str, key: str, before: Any, after: Any) -> str:
    old, new = (before, after) if side is INPUT else (after, before)
    shown = "none" if old is None else repr(old)
    return f"{side.where(path)}: {key} changed from {shown} to {new!r}" if new is not None \
        else f"{side.where(path)}: {key} {shown} was dropped"


def _props(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    props = schema.get("properties")
    return props if isinstance(props, Mapping) else {}


def _required(schema: Mapping[str, Any]) -> set[str]:
    req = schema.get("required")
    return {r for r in req if isinstance(r, str)} if isinstance(req, list) else set()


def _closed(schema: Mapping[str, Any]) -> bool:
    return schema.get("additionalProperties") is False


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _object(wide: Mapping[str, Any], narrow: Mapping[str, Any], path: str,
            side: Side) -> Iterator[str]:
    w_props, n_props = _props(wide), _props(narrow)
    for name in sorted(_required(wide) - _required(narrow)):
        if side is INPUT:
            yield f"{side.where(_join(path, name))} is now required"
        else:
            yield f"{side.where(_join(path, name))} is no longer always given"
    for name in sorted(set(n_props) - set(w_props)):
        if _closed(wide):
            if side is INPUT:
                yield f"{side.where(_join(path, name))} was removed and unknown inputs are refused"
            else:
                yield f"{side.where(_join(path, name))} is new, and callers expect no other " \
                      "outputs"
    if side is OUTPUT:
        for name in sorted(set(w_props) - set(n_props)):
            yield f"{side.where(_join(path, name))} was removed"
    for name in sorted(set(w_props) & set(n_props)):
        yield from _covers(_norm(w_props[name]), _norm(n_props[name]), _join(path, name), side)
    if _closed(wide) and not _closed(narrow):
        if side is INPUT:
            yield f"{side.where(path)}: unknown fields are now refused"
        else:
            yield f"{side.where(path)}: may now hold fields callers do not expect"


def json_diff(old: Any, new: Any, path: str = "") -> list[dict[str, Any]]:
    """Field-by-field differences of two JSON values: `{"path", "change", "from", "to"}` with
    change `added`, `removed` or `changed` (lists are compared whole)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: list[dict[str, Any]] = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in new:
                out.append({"path": where, "change": "removed", "from": old[key], "to": None})
            elif key not in old:
                out.append({"path": where, "change": "added", "from": None, "to": new[key]})
            else:
                out.extend(json_diff(old[key], new[key], where))
        return out
    if old == new and type(old) is type(new):
        return []
    return [{"path": path, "change": "changed", "from": old, "to": new}]
