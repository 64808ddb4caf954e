"""The template document: validation with JSON paths, versions, publishing rules, conversion."""
from __future__ import annotations

from typing import Any

import pytest

from baseshift.core.app.templatespec import to_spec
from baseshift.core.errors import Conflict, InputError
from baseshift.core.expr import Interp, Literal, ObjectExpr, evaluate
from baseshift.core.semver import Version
from baseshift.core.templatestore import (
    TemplateDocument,
    TemplateError,
    TemplateExists,
    TemplateIncompatible,
    check_step_types,
    parse_document,
)
from baseshift.dsl import parse_expression
from baseshift.plugins.templates.publishing import check_publish, next_version, select

INPUT = {"type": "object", "properties": {"amount": {"type": "number"},
                                          "currency": {"type": "string", "default": "EUR"}},
         "required": ["amount"], "additionalProperties": False}
OUTPUT = {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}


def document(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "templateId": "payment.charge", "version": "1.0.0", "description": "charge",
        "steps": [{"name": "charge", "type": "shell",
                   "config": {"command": "echo ${input.amount} ${input.currency}"}}],
        "inputSchema": INPUT, "outputSchema": OUTPUT}
    doc.update(changes)
    return doc


def parsed(**changes: Any) -> TemplateDocument:
    return parse_document(document(**changes))


def test_the_seed_document_shape_round_trips() -> None:
    doc = parsed()
    assert doc.name == "payment.charge" and doc.version == "1.0.0"
    assert doc.types == ("shell",)
    again = parse_document(doc.to_json())
    assert again == doc


@pytest.mark.parametrize(("changes", "path"), [
    ({"steps": []}, "$.steps"),
    ({"steps": [{"name": "a"}]}, "$.steps[0].type"),
    ({"steps": [{"name": "a", "type": "shell", "config": []}]}, "$.steps[0].config"),
    ({"steps": [{"name": "a", "type": "shell"}, {"name": "a", "type": "shell"}]},
     "$.steps[1].name"),
    ({"steps": [{"name": "a", "type": "shell", "colour": 1}]}, "$.steps[0].colour"),
    ({"version": "1.0"}, "$.version"),
    ({"version": 1}, "$.version"),
    ({"templateId": "no spaces"}, "$.templateId"),
    ({"templateId": "trailing.newline\n"}, "$.templateId"),  # `$` would let it through
    ({"steps": [{"name": "a\n", "type": "shell"}]}, "$.steps[0].name"),
    ({"name": "other"}, "$.name"),
    ({"inputSchema": {"type": 12}}, "$.inputSchema.type"),
    ({"inputSchema": {"type": "string"}}, "$.inputSchema.type"),
    ({"outputSchema": []}, "$.outputSchema"),
    ({"description": 3}, "$.description"),
    ({"extra": True}, "$.extra"),
])
def test_an_invalid_document_names_the_json_path(changes: dict[str, Any], path: str) -> None:
    with pytest.raises(TemplateError) as info:
        parsed(**changes)
    assert info.value.message.startswith(path + ":"), info.value.message
    assert isinstance(info.value, InputError) and info.value.status == 422


def test_a_deeply_nested_document_is_refused_not_crashing() -> None:
    config: dict[str, Any] = {}
    for _ in range(5000):
        config = {"x": config}
    with pytest.raises(TemplateError, match="nested deeper than 64"):
        parsed(steps=[{"name": "a", "type": "shell", "config": config}])


def test_a_document_that_is_not_an_object() -> None:
    with pytest.raises(TemplateError, match=r"^\$: must be an object"):
        parse_document(["x"])


def test_step_types_must_be_installed_executors() -> None:
    doc = parsed(steps=[{"name": "a", "type": "shell"}, {"name": "b", "type": "validation"}])
    with pytest.raises(TemplateError, match=r"\$\.steps\[1\]\.type: there is no executor") as e:
        check_step_types(doc, ["shell", "http"])
    assert e.value.hint == "known executors: http, shell"
    check_step_types(parsed(), ["shell"])


def test_next_version_bumps_from_the_latest() -> None:
    versions = [Version(1, 2, 3), Version(1, 10, 0), Version(0, 9, 9)]
    assert str(next_version(versions, "major")) == "2.0.0"
    assert str(next_version(versions, "minor")) == "1.11.0"
    assert str(next_version(versions, "patch")) == "1.10.1"
    assert [str(next_version([], b)) for b in ("major", "minor", "patch")] == [
        "1.0.0", "0.1.0", "0.0.1"]


def test_publishing_sets_version_from_a_bump_and_created_at() -> None:
    existing = [parsed()]
    doc = parse_document(document(version=None), need_version=False)
    stored = check_publish(doc, existing, "minor", now=5.0)
    assert (stored.version, stored.created_at) == ("1.1.0", 5.0)
    with pytest.raises(TemplateError, match="either a version or a bump"):
        check_publish(parsed(version="1.1.0"), existing, "patch")
    with pytest.raises(TemplateError, match="version: is missing"):
        check_publish(doc, existing)


def test_published_versions_are_immutable() -> None:
    with pytest.raises(TemplateExists, match="already published") as info:
        check_publish(parsed(), [parsed()])
    assert isinstance(info.value, Conflict) and info.value.status == 409


def test_a_deleted_version_number_is_never_published_again() -> None:
    with pytest.raises(TemplateExists, match=r"payment\.charge@1\.1\.0 was published and "
                       "deleted; a version number is never reused") as info:
        check_publish(parsed(version="1.1.0"), [parsed()], retired={"1.1.0"})
    assert info.value.hint == "publish it under a new version (bump patch, minor or major)"
    bumped = parse_document(document(version=None), need_version=False)
    with pytest.raises(TemplateExists, match="published and deleted"):
        check_publish(bumped, [parsed()], "minor", retired={"1.1.0"})
    assert check_publish(bumped, [parsed()], "patch", retired={"1.1.0"}).version == "1.0.1"


def test_a_minor_version_that_breaks_callers_is_refused_with_reasons() -> None:
    narrower = {**INPUT, "required": ["amount", "currency"]}
    with pytest.raises(TemplateIncompatible) as info:
        check_publish(parsed(version="1.1.0", inputSchema=narrower), [parsed()])
    assert info.value.reasons == ["input 'currency' is now required"]
    assert "would break callers of payment.charge@1.0.0" in info.value.message
    assert info.value.status == 409


def test_a_new_major_version_may_break_callers() -> None:
    narrower = {**INPUT, "required": ["amount", "currency"]}
    stored = check_publish(parsed(version="2.0.0", inputSchema=narrower), [parsed()])
    assert stored.version == "2.0.0"


def test_before_one_zero_zero_each_minor_is_its_own_line() -> None:
    first = parsed(version="0.1.0")
    narrower = {**INPUT, "required": ["amount", "currency"]}
    check_publish(parsed(version="0.2.0", inputSchema=narrower), [first])
    with pytest.raises(TemplateIncompatible):
        check_publish(parsed(version="0.1.1", inputSchema=narrower), [first])


def test_compatibility_is_checked_against_the_closest_earlier_version() -> None:
    v1 = parsed()
    v1_1 = parsed(version="1.1.0", outputSchema={**OUTPUT, "properties": {
        "id": {"type": "string"}, "status": {"type": "string"}}, "required": ["id", "status"]})
    with pytest.raises(TemplateIncompatible, match="output 'status'"):
        check_publish(parsed(version="1.2.0"), [v1, v1_1])


def test_select_exact_range_and_latest() -> None:
    docs = [parsed(version=v) for v in ("1.0.0", "1.2.0", "2.0.0")]
    assert select(docs, None).version == "2.0.0"  # type: ignore[union-attr]
    assert select(docs, "^1").version == "1.2.0"  # type: ignore[union-attr]
    assert select(docs, "1.0.0").version == "1.0.0"  # type: ignore[union-attr]
    assert select(docs, "3.0.0") is None
    assert select([], None) is None
    with pytest.raises(TemplateError, match=r"\$\.version"):
        select(docs, "one")


# ------------------------------------------------------------------ conversion


def test_a_document_becomes_a_spec_the_checker_understands() -> None:
    spec = to_spec(parsed(), parse_expression)
    assert (spec.name, spec.version, spec.uses, spec.steps) == (
        "payment.charge", "1.0.0", "shell", ())
    assert [(i.name, str(i.type), i.required, i.default) for i in spec.inputs] == [
        ("amount", "number", True, None), ("currency", "string", False, "EUR")]
    assert [o.name for o in spec.outputs] == ["id"]
    command = spec.config.get("command")
    assert isinstance(command, Interp)
    assert evaluate(spec.config, {"input": {"amount": 3, "currency": "EUR"}}) == {
        "command": "echo 3 EUR"}


def test_interpolation_keeps_the_type_of_a_lone_expression_and_escapes() -> None:
    doc = parsed(steps=[{"name": "a", "type": "http", "config": {
        "json": {"amount": "${input.amount * 2}", "items": ["${input.currency}", 1, None]},
        "literal": "costs $${input.amount}", "plain": "no $ here"}}])
    spec = to_spec(doc, parse_expression)
    value = evaluate(spec.config, {"input": {"amount": 2.5, "currency": "EUR"}})
    assert value == {"json": {"amount": 5.0, "items": ["EUR", 1, None]},
                     "literal": "costs ${input.amount}", "plain": "no $ here"}
    assert spec.config.get("plain") == Literal("no $ here")


def test_multi_step_templates_keep_every_step() -> None:
    doc = parsed(steps=[
        {"name": "fetch", "type": "http", "config": {"url": "https://x/${input.amount}"}},
        {"name": "show", "type": "shell",
         "config": {"command": "echo ${steps.fetch.output.id}"}}])
    spec = to_spec(doc, parse_expression)
    assert [(s.name, s.uses) for s in spec.steps] == [("fetch", "http"), ("show", "shell")]
    assert (spec.uses, spec.config) == ("http", spec.steps[0].config)
    assert isinstance(spec.steps[1].config, ObjectExpr)


@pytest.mark.parametrize(("config", "message"), [
    ({"command": "echo ${input.amount +}"}, r"\$\.steps\[0\]\.config\.command: "
                                            r"'\$\{input\.amount \+\}' is not an expression"),
    ({"headers": {"Authorization": "Bearer ${API_KEY}"}},
     r"\$\.steps\[0\]\.config\.headers\.Authorization: step 'charge': unknown name 'API_KEY'"),
    ({"command": "${input.nope}"}, r"'input\.nope' is not in the inputSchema"),
    ({"command": "${steps.charge.output}"}, r"'steps\.charge\.output' is not an earlier step"),
    ({"command": "${shout(input.amount)}"}, r"unknown function 'shout'"),
    ({"command": "${}"}, r"holds no expression"),
])
def test_a_config_that_does_not_parse_names_step_and_field(config: dict[str, Any],
                                                           message: str) -> None:
    doc = parsed(steps=[{"name": "charge", "type": "shell", "config": config}])
    with pytest.raises(TemplateError, match=message):
        to_spec(doc, parse_expression)
