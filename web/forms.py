"""Run forms generated from a workflow's typed inputs, and reading them back.

Field values stay text: the run service checks and converts them against the declared types
(`coerce`), so the form and the API share one set of rules and error messages.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from baseshift.core.plan import InputSpec

_FIELD_IN_MESSAGE = re.compile(r"input '([^'\[]+)")


@dataclass(frozen=True, slots=True)
class FormField:
    """One control of a run form. `kind` is text, number, integer, checkbox or json."""

    name: str
    kind: str
    type: str
    required: bool
    value: str
    description: str | None = None
    error: str | None = None
    secret: bool = False
    """A `secret` input: typed into a password field, never shown back."""

    @property
    def checked(self) -> bool:
        return self.value == "true"

    @property
    def dom_id(self) -> str:
        return f"input-{self.name}"


def field_kind(spec: InputSpec) -> str:
    """The control that fits a declared type."""
    name = spec.type.name
    if name == "boolean":
        return "checkbox"
    if name in ("number", "integer", "string"):
        return "text" if name == "string" else name
    return "json"


def form_fields(inputs: Sequence[InputSpec], values: Mapping[str, str] | None = None,
                errors: Mapping[str, str] | None = None) -> list[FormField]:
    """The fields of a run form: submitted `values` if any, else the declared defaults."""
    values, errors = values or {}, errors or {}
    return [FormField(name=spec.name, kind=field_kind(spec), type=str(spec.type),
                      required=spec.required,
                      value=values[spec.name] if spec.name in values else _default_text(spec),
                      description=spec.description, error=errors.get(spec.name),
                      secret=spec.secret)
            for spec in inputs]


def _default_text(spec: InputSpec) -> str:
    if not spec.has_default or spec.default is None:
        return ""
    if field_kind(spec) == "checkbox":
        return "true" if spec.default else "false"
    if isinstance(spec.default, str) and field_kind(spec) != "json":
        return spec.default
    return json.dumps(spec.default)


def submitted_values(inputs: Sequence[InputSpec], form: Mapping[str, Any]) -> dict[str, str]:
    """What the user typed, by field (to show the form again after an error)."""
    out: dict[str, str] = {}
    for spec in inputs:
        if field_kind(spec) == "checkbox":
            out[spec.name] = "true" if form.get(spec.name) else "false"
        elif spec.secret:
            out[spec.name] = ""  # typed again: a secret is never written into a page
        else:
            out[spec.name] = str(form.get(spec.name, ""))
    return out


def inputs_from_form(inputs: Sequence[InputSpec], form: Mapping[str, Any]) -> dict[str, Any]:
    """Run inputs from a submitted form: empty fields are left out (defaults apply), a
    checkbox is true or false, JSON fields of type `any` fall back to their text."""
    out: dict[str, Any] = {}
    for spec in inputs:
        kind = field_kind(spec)
        if kind == "checkbox":
            out[spec.name] = bool(form.get(spec.name))
            continue
        text = str(form.get(spec.name, ""))
        if text.strip() == "":
            continue
        out[spec.name] = _any_value(text) if spec.type.name == "any" else text
    return out


def _any_value(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def field_of_error(message: str) -> str | None:
    """The input an InputError message names (`input 'amount' must be ...`), if any."""
    match = _FIELD_IN_MESSAGE.search(message)
    return match.group(1) if match else None
