"""From a stored template document to the `TemplateSpec` the checker and the engine use.

Step configs are JSON; a string in them may hold `${...}` expressions (the workflow
language's expressions, `$${` for a literal `${`), which become `Interp` nodes as in a `.bsw`
file. The expression parser is passed in (`baseshift.dsl.parse_expression`) because `core`
does not import the language front end.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import DSLError
from ..expr import (
    FUNCTIONS,
    Call,
    Expr,
    Interp,
    ListExpr,
    Literal,
    ObjectExpr,
    children,
    describe,
)
from ..expr import references as expr_references
from ..plan import NO_SPAN, InputSpec, TemplateSpec, TemplateStep
from ..schema import from_json_schema
from ..templatestore import EMPTY_INPUT, JsonPath, StepDocument, TemplateDocument, TemplateError

ExpressionParser = Callable[[str], Expr]
"""Parses the text inside `${...}`; raises DSLError when it is not an expression."""

_PIECE = re.compile(r'\$\$\{|\$\{((?:[^}"\n]|"(?:[^"\\\n]|\\[^\n])*")*)\}')
Checker = Callable[[Expr, JsonPath], None]
ROOTS = ("input", "secret", "run", "steps")


def to_spec(doc: TemplateDocument, parse: ExpressionParser) -> TemplateSpec:
    """The spec of a document; TemplateError names the step and field that does not parse
    or refers to an unknown name."""
    inputs = input_specs(doc.input_schema)
    steps: list[TemplateStep] = []
    for i, step in enumerate(doc.steps):
        earlier = [s.name for s in steps]

        def check(e: Expr, path: JsonPath, step: str = step.name,
                  earlier: list[str] = earlier) -> None:
            _check_names(e, path, step, doc, earlier)

        config = config_expr(step.config, parse, ("steps", i, "config"), check)
        assert isinstance(config, ObjectExpr)
        steps.append(TemplateStep(step.name, step.type, config))
    first = steps[0]
    return TemplateSpec(
        name=doc.name, version=doc.version, uses=first.uses, config=first.config,
        input_schema=doc.input_schema, output_schema=doc.output_schema,
        inputs=inputs, outputs=input_specs(doc.output_schema),
        description=doc.description, span=NO_SPAN,
        steps=tuple(steps) if len(steps) > 1 else ())


def to_document(spec: TemplateSpec) -> TemplateDocument:
    """The document of a template declared in a `.bsw` file, so the template APIs show every
    template in one shape; step configs become JSON with `${...}` strings (`config_expr`
    reads them back to the same expressions). A one-step template's step is named after
    the last part of the template's name."""
    steps = spec.steps or (TemplateStep(spec.name.rpartition(".")[2], spec.uses, spec.config),)
    return TemplateDocument(
        name=spec.name, version=spec.version,
        steps=tuple(StepDocument(s.name, s.uses, _fields_json(s.config)) for s in steps),
        input_schema=dict(spec.input_schema) or dict(EMPTY_INPUT),
        output_schema=dict(spec.output_schema), description=spec.description)


def config_json(e: Expr) -> Any:
    """An expression as template JSON: the inverse of `config_expr`."""
    match e:
        case ObjectExpr():
            return _fields_json(e)
        case ListExpr(items=items):
            return [config_json(i) for i in items]
        case Literal(value=str() as text):
            return _escaped(text)
        case Literal(value=value):
            return value
        case Interp(parts=parts):
            return "".join(_escaped(p) if isinstance(p, str) else "${" + describe(p) + "}"
                           for p in parts)
    return "${" + describe(e) + "}"


def _fields_json(e: ObjectExpr) -> dict[str, Any]:
    return {k: config_json(v) for k, v in e.fields}


def _escaped(text: str) -> str:
    return text.replace("${", "$${")


def input_specs(schema: Mapping[str, Any]) -> tuple[InputSpec, ...]:
    """Typed fields of an object schema (what the checker matches a job's `with` against)."""
    props = schema.get("properties")
    if not isinstance(props, Mapping):
        return ()
    required = schema.get("required") if isinstance(schema.get("required"), list) else []
    out = []
    for name, prop in props.items():
        prop = prop if isinstance(prop, Mapping) else {}
        out.append(InputSpec(
            name=name, type=from_json_schema(dict(prop)), default=prop.get("default"),
            has_default="default" in prop, optional=name not in (required or []),
            description=prop.get("description") if isinstance(prop.get("description"), str)
            else None, secret=_write_only(prop)))
    return tuple(out)


def _write_only(prop: Mapping[str, Any]) -> bool:
    """Whether a schema property is a secret (`writeOnly`, as `schema.secret_schema` marks
    it), directly or in the `anyOf` of an optional one."""
    if prop.get("writeOnly") is True:
        return True
    options = prop.get("anyOf")
    return isinstance(options, list) and any(
        isinstance(o, Mapping) and o.get("writeOnly") is True for o in options)


def config_expr(value: Any, parse: ExpressionParser, path: JsonPath,
                check: Checker | None = None) -> Expr:
    """A JSON value as an expression: objects, lists, literals, interpolated strings.

    `check` is called on each interpolated string with its path (to refuse unknown names)."""
    if isinstance(value, Mapping):
        return ObjectExpr(tuple((str(k), config_expr(v, parse, (*path, str(k)), check))
                                for k, v in value.items()))
    if isinstance(value, list):
        return ListExpr(tuple(config_expr(v, parse, (*path, i), check)
                              for i, v in enumerate(value)))
    if isinstance(value, str):
        expr = interpolate(value, parse, path)
        if check is not None and isinstance(expr, Interp):
            check(expr, path)
        return expr
    if value is None or isinstance(value, bool | int | float):
        return Literal(value)
    raise TemplateError(path, f"is not a JSON value ({type(value).__name__})")


def interpolate(text: str, parse: ExpressionParser, path: JsonPath) -> Expr:
    """A Literal, or an Interp when the text holds `${...}` (a lone `${x}` keeps x's type)."""
    if "${" not in text:
        return Literal(text)
    parts: list[str | Expr] = []
    end = 0
    for m in _PIECE.finditer(text):
        _add_text(parts, text[end:m.start()])
        if m[1] is None:
            _add_text(parts, "${")
        else:
            parts.append(_parse(m[1], parse, path))
        end = m.end()
    _add_text(parts, text[end:])
    if all(isinstance(p, str) for p in parts):
        return Literal("".join(p for p in parts if isinstance(p, str)))
    return Interp(tuple(parts))


def _add_text(parts: list[str | Expr], text: str) -> None:
    if not text:
        return
    if parts and isinstance(parts[-1], str):
        parts[-1] += text
    else:
        parts.append(text)


def _parse(source: str, parse: ExpressionParser, path: JsonPath) -> Expr:
    if not source.strip():
        raise TemplateError(path, "'${}' holds no expression")
    try:
        return parse(source)
    except DSLError as exc:
        detail = next((getattr(d, "message", "") for d in exc.diagnostics), "")
        raise TemplateError(path, f"'${{{source}}}' is not an expression"
                            + (f": {detail}" if detail else "")) from None


def _check_names(config: Expr, path: JsonPath, step: str, doc: TemplateDocument,
                 earlier: list[str]) -> None:
    declared = doc.input_schema.get("properties")
    closed = isinstance(declared, Mapping) and doc.input_schema.get("additionalProperties") \
        is False
    for root, fields, _ in expr_references(config):
        if root not in ROOTS:
            raise TemplateError(path, f"step '{step}': unknown name '{root}'",
                                hint="expressions read input.NAME, secret.NAME, run.id, "
                                "steps.NAME.output")
        if root == "input" and fields and closed and fields[0] not in (declared or {}):
            raise TemplateError(path, f"step '{step}': 'input.{fields[0]}' is not in the "
                                "inputSchema",
                                hint=f"declared inputs: {', '.join(declared or {}) or 'none'}")
        if root == "steps" and (not fields or fields[0] not in earlier):
            raise TemplateError(path, f"step '{step}': 'steps.{'.'.join(fields)}' is not an "
                                "earlier step",
                                hint=f"earlier steps: {', '.join(earlier) or 'none'}")
    _check_calls(config, path, step)


def _check_calls(e: Expr, path: JsonPath, step: str) -> None:
    if isinstance(e, Call) and e.func not in FUNCTIONS:
        raise TemplateError(path, f"step '{step}': unknown function '{e.func}'",
                            hint=f"functions: {', '.join(sorted(FUNCTIONS))}")
    for child in children(e):
        _check_calls(child, path, step)
