"""Compatibility of template schemas: examples, and properties over generated schemas."""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from baseshift.plugins.templates.schemacompat import breaking_changes, input_changes, output_changes

Schema = dict[str, Any]
NAMES = st.sampled_from(["a", "b", "c", "amount", "id"])
SCALAR_TYPES = ["string", "number", "integer", "boolean", "null", "array"]


def leaf() -> st.SearchStrategy[Schema]:
    one_type = st.sampled_from(SCALAR_TYPES)
    return st.fixed_dictionaries(
        {"type": st.one_of(one_type, st.lists(one_type, min_size=1, max_size=3, unique=True))},
        optional={"enum": st.lists(st.text(max_size=3), min_size=1, max_size=4, unique=True),
                  "minimum": st.integers(-5, 5), "maximum": st.integers(-5, 5)})


def objects(children: st.SearchStrategy[Schema]) -> st.SearchStrategy[Schema]:
    def build(props: dict[str, Schema], required: list[str], closed: bool | None) -> Schema:
        schema: Schema = {"type": "object", "properties": props,
                          "required": [r for r in required if r in props]}
        if closed is not None:
            schema["additionalProperties"] = not closed
        return schema

    return st.builds(build, st.dictionaries(NAMES, children, max_size=3),
                     st.lists(NAMES, unique=True, max_size=3), st.one_of(st.none(), st.booleans()))


SCHEMAS = objects(st.recursive(leaf(), objects, max_leaves=4))
# Generation cost varies with the machine's load; no timing is part of these properties.
RELAXED = settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)


def _targets(schema: Schema) -> list[Schema]:
    """Every sub-schema (the root and nested property schemas), to apply a change to one."""
    out = [schema]
    for prop in schema.get("properties", {}).values():
        out.extend(_targets(prop))
    return out


def _types(s: Schema) -> list[str]:
    t = s.get("type")
    return [] if t is None else [t] if isinstance(t, str) else list(t)


Change = Callable[[Schema, st.DataObject], bool]


# ------------------------------------------------------------------ widenings


def add_type(s: Schema, data: st.DataObject) -> bool:
    if not _types(s):
        return False
    s["type"] = [*_types(s), data.draw(st.sampled_from(SCALAR_TYPES))]
    return True


def integer_to_number(s: Schema, data: st.DataObject) -> bool:
    if "integer" not in _types(s):
        return False
    s["type"] = [("number" if t == "integer" else t) for t in _types(s)]
    return True


def drop_enum(s: Schema, data: st.DataObject) -> bool:
    return s.pop("enum", None) is not None


def add_enum_value(s: Schema, data: st.DataObject) -> bool:
    if "enum" not in s:
        return False
    s["enum"] = [*s["enum"], data.draw(st.text(max_size=3))]
    return True


def drop_required(s: Schema, data: st.DataObject) -> bool:
    if not s.get("required"):
        return False
    s["required"] = s["required"][1:]
    return True


def open_object(s: Schema, data: st.DataObject) -> bool:
    return s.pop("additionalProperties", None) is False


def add_optional_property(s: Schema, data: st.DataObject) -> bool:
    if s.get("type") != "object":
        return False
    s["properties"] = {**s["properties"], "zz_new": {"type": "string"}}
    return True


def loosen_bound(s: Schema, data: st.DataObject) -> bool:
    key = data.draw(st.sampled_from(["minimum", "maximum"]))
    if key not in s:
        return False
    if data.draw(st.booleans()):
        del s[key]
    else:
        s[key] += -1 if key == "minimum" else 1
    return True


WIDENINGS = [add_type, integer_to_number, drop_enum, add_enum_value, drop_required, open_object,
             add_optional_property, loosen_bound]


# ------------------------------------------------------------------ narrowings


def remove_type(s: Schema, data: st.DataObject) -> bool:
    types = _types(s)
    # integer is not lost while number stays
    removable = [t for t in types if t != "integer" or "number" not in types]
    if len(types) < 2 or not removable:
        return False
    gone = data.draw(st.sampled_from(removable))
    s["type"] = [t for t in types if t != gone]
    return True


def number_to_integer(s: Schema, data: st.DataObject) -> bool:
    if "number" not in _types(s):
        return False
    s["type"] = [("integer" if t == "number" else t) for t in _types(s)]
    return True


def remove_enum_value(s: Schema, data: st.DataObject) -> bool:
    if len(s.get("enum", [])) < 2:
        return False
    s["enum"] = s["enum"][1:]
    return True


def add_enum(s: Schema, data: st.DataObject) -> bool:
    if "enum" in s:
        return False
    s["enum"] = ["only"]
    return True


def require_more(s: Schema, data: st.DataObject) -> bool:
    if s.get("type") != "object":
        return False
    s["required"] = [*s["required"], "zz_required"]
    return True


def tighten_bound(s: Schema, data: st.DataObject) -> bool:
    key = data.draw(st.sampled_from(["minimum", "maximum"]))
    s[key] = s.get(key, 0) + (1 if key == "minimum" else -1) if key in s else 0
    return True


NARROWINGS = [remove_type, number_to_integer, remove_enum_value, add_enum, require_more,
              tighten_bound]


def changed(schema: Schema, change: Change, data: st.DataObject) -> Schema:
    """A copy with `change` made to one sub-schema it applies to."""
    new = copy.deepcopy(schema)
    targets = data.draw(st.permutations(_targets(new)))
    assume(any(change(target, data) for target in targets))
    return new


@RELAXED
@given(SCHEMAS)
def test_a_schema_is_compatible_with_itself(schema: Schema) -> None:
    assert breaking_changes(schema, schema, copy.deepcopy(schema), copy.deepcopy(schema)) == []


@RELAXED
@given(SCHEMAS, st.sampled_from(WIDENINGS), st.data())
def test_widening_inputs_or_narrowing_outputs_never_breaks(schema: Schema, change: Change,
                                                           data: st.DataObject) -> None:
    wider = changed(schema, change, data)
    assert input_changes(schema, wider) == []
    if change is not add_optional_property:  # a removed output field breaks, even optional
        assert output_changes(wider, schema) == []


@RELAXED
@given(SCHEMAS, st.sampled_from(NARROWINGS), st.data())
def test_each_narrowing_of_inputs_or_widening_of_outputs_is_detected(
        schema: Schema, change: Change, data: st.DataObject) -> None:
    narrower = changed(schema, change, data)
    assert input_changes(schema, narrower), (schema, narrower)
    assert output_changes(narrower, schema), (schema, narrower)


@RELAXED
@given(SCHEMAS, st.data())
def test_removing_an_output_property_is_detected(schema: Schema, data: st.DataObject) -> None:
    assume(schema["properties"])
    name = data.draw(st.sampled_from(sorted(schema["properties"])))
    new = copy.deepcopy(schema)
    del new["properties"][name]
    new["required"] = [r for r in new["required"] if r != name]
    assert f"output '{name}' was removed" in output_changes(schema, new)


# ------------------------------------------------------------------ examples, with wording

OLD_IN = {"type": "object", "additionalProperties": False,
          "properties": {"amount": {"type": "number"},
                         "currency": {"type": "string", "enum": ["EUR", "USD"]},
                         "note": {"type": ["string", "null"]}},
          "required": ["amount"]}


@pytest.mark.parametrize(("change", "reason"), [
    ({"required": ["amount", "currency"]}, "input 'currency' is now required"),
    ({"properties": {**OLD_IN["properties"], "amount": {"type": "integer"}}},
     "input 'amount' no longer accepts number (now integer only)"),
    ({"properties": {**OLD_IN["properties"], "currency": {"type": "string", "enum": ["EUR"]}}},
     "input 'currency' no longer accepts 'USD'"),
    ({"properties": {**OLD_IN["properties"], "note": {"type": "string"}}},
     "input 'note' no longer accepts null (now string only)"),
    ({"properties": {"amount": {"type": "number"}, "currency": OLD_IN["properties"]["currency"]}},
     "input 'note' was removed and unknown inputs are refused"),
])
def test_breaking_input_changes_are_explained(change: Schema, reason: str) -> None:
    assert input_changes(OLD_IN, {**OLD_IN, **change}) == [reason]


def test_breaking_output_changes_are_explained() -> None:
    old = {"type": "object", "properties": {"id": {"type": "string"},
                                            "status": {"type": "string"}},
           "required": ["id", "status"]}
    new = {"type": "object", "properties": {"status": {"type": ["string", "null"]}},
           "required": ["status"]}
    assert output_changes(old, new) == [
        "output 'id' is no longer always given", "output 'id' was removed",
        "output 'status' may now be null, callers expect string"]


def test_unions_are_compared_branch_by_branch() -> None:
    nullable = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert input_changes({"type": "string"}, nullable) == []
    assert input_changes(nullable, {"type": "string"}) == [
        "the input no longer accepts null (now string only)"]


def test_boolean_schemas() -> None:
    assert input_changes(True, {"type": "string"}) == [
        "the input no longer accepts any type (now string only)"]
    assert input_changes(False, {"type": "string"}) == []
    assert input_changes({"type": "string"}, False) == ["the input accepts nothing any more"]
