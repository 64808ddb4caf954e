"""Calling a job template: check inputs against its schema, render its config, check outputs."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from .errors import ExecutionError
from .expr import Expr, evaluate, references
from .plan import JobSpec, TemplateSpec

if TYPE_CHECKING:
    from .scope import RunScope


class TemplateCalls:
    """Per-engine caches of compiled schema validators and secret names, keyed by spec."""

    def __init__(self) -> None:
        self._validators: dict[tuple[str, str], Draft202012Validator] = {}
        self._secrets: dict[int, tuple[str, ...]] = {}

    def secret_names(self, spec: JobSpec) -> tuple[str, ...]:
        """The `secret.NAME` references of a job (and of its template), in order."""
        key = id(spec)
        names = self._secrets.get(key)
        if names is None:
            exprs: list[Expr] = [spec.config]
            if spec.template is not None:
                exprs.append(spec.template.config)
                exprs.extend(step.config for step in spec.template.steps)
            names = tuple(dict.fromkeys(
                path[0] for e in exprs for root, path, _ in references(e)
                if root == "secret" and path))
            self._secrets[key] = names
        return names

    def render(self, spec: JobSpec, inputs: Any, scope: RunScope,
               secrets: dict[str, str]) -> dict[str, Any]:
        """The executor config of a template job, from the inputs its `with` block passed.

        Raises ValueError when the inputs break the template's inputSchema.
        """
        template = spec.template
        assert template is not None
        values = self.inputs(template, inputs)
        config = evaluate(template.config, scope.with_values(input=values, secret=secrets))
        return config if isinstance(config, dict) else {}

    def inputs(self, template: TemplateSpec, given: Any) -> dict[str, Any]:
        """The template's `input` values: defaults filled in, checked against inputSchema.

        Raises ValueError when they break it."""
        values = _with_defaults(template, given if isinstance(given, dict) else {})
        errors = self._errors(template, "input", template.input_schema, values)
        if errors:
            raise ValueError(f"inputs of template {template.ref} are invalid: {errors}")
        for spec_input in template.inputs:
            values.setdefault(spec_input.name, None)  # optional and absent: reads as null
        return values

    def check_output(self, spec: JobSpec, output: Any) -> Any:
        """Validate a template job's output against its outputSchema; other jobs pass."""
        template = spec.template
        if template is None or not template.output_schema:
            return output
        errors = self._errors(template, "output", template.output_schema, output)
        if errors:
            raise ExecutionError(f"output of template {template.ref} breaks its outputSchema: "
                                 f"{errors}")
        return output

    def _errors(self, template: TemplateSpec, kind: str, schema: dict[str, Any],
                value: Any) -> str | None:
        key = (template.ref, kind)
        validator = self._validators.get(key)
        if validator is None:
            validator = self._validators[key] = Draft202012Validator(schema)
        problems = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        return "; ".join(_explain(e) for e in problems[:5]) or None


def _with_defaults(template: TemplateSpec, values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for spec in template.inputs:
        if spec.name not in out and spec.has_default:
            out[spec.name] = spec.default
    return out


def _explain(error: ValidationError) -> str:
    where = ".".join(str(p) for p in error.path)
    return f"{where}: {error.message}" if where else error.message
