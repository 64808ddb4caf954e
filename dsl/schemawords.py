"""JSON-Schema validation errors in the words of a workflow author.

jsonschema says "'zero' is not valid under any of the given schemas"; an author needs "must
be an integer or a list of integers, not the string 'zero'". Executor settings are checked
against their schemas (`decls`), and this one helper words every such error.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from jsonschema.exceptions import ValidationError

_TYPES = {"integer": "an integer", "number": "a number", "string": "a string",
          "boolean": "true or false", "array": "a list", "object": "an object", "null": "null"}


def plain(error: ValidationError) -> str:
    """What is wrong with the value, as "must be ..., not ..."."""
    wanted = _rule(error.validator, error.validator_value, error.schema)
    if wanted is None:
        return str(error.message)
    return f"must be {wanted}, not {shown(error.instance)}"


def shown(value: Any) -> str:
    """A value as the author wrote it, with what kind of value it is."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, str):
        return f"the string {_quoted(value)}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    return "an object"


def describe(schema: Any) -> str | None:
    """What a schema accepts, in a few words; None when it is not simple enough to say."""
    if not isinstance(schema, Mapping):
        return None
    for keyword in ("enum", "const", "oneOf", "anyOf"):
        if keyword in schema:
            return _rule(keyword, schema[keyword], schema)
    kind = _type(schema.get("type"))
    if kind is None:
        return None
    limits = [w for w in (_bounds(schema), _items(schema)) if w]
    return " ".join([kind, *limits])


def _rule(keyword: str, value: Any, schema: Any) -> str | None:
    """What one schema keyword asks for."""
    if keyword in ("oneOf", "anyOf") and isinstance(value, Sequence):
        options = [describe(s) for s in value]
        if any(o is None for o in options):
            return None
        return _either([o for o in options if o])
    if keyword == "enum" and isinstance(value, Sequence):
        return "one of " + ", ".join(json.dumps(v) for v in value)
    if keyword == "const":
        return json.dumps(value)
    if keyword == "type":
        return _type(value)
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return describe(schema)
    if keyword == "minItems":
        return f"a list of at least {value} item{'s' if value != 1 else ''}"
    if keyword == "minLength":
        return "a string that is not empty" if value == 1 else f"a string of {value}+ characters"
    if keyword == "pattern":
        return f"a string matching {value}"
    return None


def _type(value: Any) -> str | None:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, Sequence) or not all(n in _TYPES for n in names):
        return None
    return _either([_TYPES[n] for n in names])


def _bounds(schema: Mapping[str, Any]) -> str:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        return f"from {low} to {high}"
    if low is not None:
        return f"of at least {low}"
    if high is not None:
        return f"of at most {high}"
    return ""


def _items(schema: Mapping[str, Any]) -> str:
    item = describe(schema.get("items")) if "items" in schema else None
    return f"of {_plural(item)}" if item else ""


def _plural(phrase: str) -> str:
    """`an integer` -> `integers`, for the items of a list."""
    words = phrase.split(" ", 1)
    if words[0] in ("a", "an") and len(words) == 2:
        head, _, rest = words[1].partition(" ")
        return f"{head}s" + (f" {rest}" if rest else "")
    return phrase


def _either(options: list[str]) -> str:
    if len(options) <= 1:
        return "".join(options)
    return ", ".join(options[:-1]) + " or " + options[-1]


def _quoted(text: str) -> str:
    """A string value as JSON text (its quotes and control characters escaped), shortened."""
    return json.dumps(text if len(text) <= 40 else text[:37] + "...")
