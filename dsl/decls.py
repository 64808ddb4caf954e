"""Declarations and settings: input types and defaults, durations, retry policies, and
checking a job's `with` block against an executor's config schema or a template's inputs.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from baseshift.core.diagnostics import Span, article
from baseshift.core.expr import Expr, ListExpr, Literal, ObjectExpr, Unary, references
from baseshift.core.plan import InputSpec, RetryPolicy, TemplateSpec
from baseshift.core.schema import ANY, SCALARS, TypeRef, list_of, secret_schema, to_json_schema

from . import ast
from .literals import parse_duration
from .report import Reporter, did_you_mean
from .schemawords import plain
from .typecheck import Shape, shape_of

_TYPE_NAMES = (*SCALARS, "list")
_JSON_TYPES = {"string": {"string"}, "number": {"number", "integer"}, "integer": {"integer"},
               "boolean": {"boolean"}, "object": {"object"}, "array": {"list"},
               "null": {"null"}}
_NO_VALUE = object()
NO_VALUE = _NO_VALUE
"""What `constant` returns for an expression that is not a literal value."""


def type_of(t: ast.TypeExpr, report: Reporter) -> TypeRef:
    """The TypeRef a declared type names; unknown names are reported and become `any`."""
    if t.name not in _TYPE_NAMES:
        report.error(t.span, "dsl.unknown-type", f"unknown type '{t.name}'",
                     did_you_mean(t.name, _TYPE_NAMES, "types"))
        return ANY
    if t.item is not None and t.name != "list":
        report.error(t.span, "dsl.unknown-type", f"only 'list' takes an item type, not '{t.name}'")
        return ANY
    if t.name == "list":
        return list_of(type_of(t.item, report) if t.item else ANY)
    return TypeRef(t.name)


def constant(e: Expr) -> Any:
    """The value of a literal expression (`-3`, `[1, "a"]`, `{k: true}`), else _NO_VALUE."""
    if isinstance(e, Literal):
        return e.value
    if isinstance(e, Unary) and e.op == "-" and isinstance(e.operand, Literal):
        value = e.operand.value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return -value
        return _NO_VALUE
    if isinstance(e, ListExpr):
        items = [constant(i) for i in e.items]
        return _NO_VALUE if any(i is _NO_VALUE for i in items) else items
    if isinstance(e, ObjectExpr):
        values = {k: constant(v) for k, v in e.fields}
        return _NO_VALUE if any(v is _NO_VALUE for v in values.values()) else values
    return _NO_VALUE


def value_fits(t: TypeRef, value: Any) -> bool:
    """Whether a literal value has type `t` (lists are checked item by item)."""
    if t.name == "any":
        return True
    if t.name == "list":
        return isinstance(value, list) and all(value_fits(t.item or ANY, v) for v in value)
    kinds = {"string": str, "boolean": bool, "object": dict, "number": int | float,
             "integer": int}
    if t.name == "null":
        return value is None
    wanted = kinds.get(t.name)
    return wanted is not None and isinstance(value, wanted) and (
        t.name == "boolean" or not isinstance(value, bool))


def input_specs(fields: Sequence[ast.FieldDecl], report: Reporter,
                what: str) -> tuple[InputSpec, ...]:
    """InputSpecs for `input { }` / `output { }` fields, reporting duplicates and bad defaults."""
    specs: dict[str, InputSpec] = {}
    for f in fields:
        if f.name.name in specs:
            report.error(f.name.span, "dsl.duplicate", f"{what} '{f.name.name}' is declared twice")
            continue
        t = type_of(f.type, report)
        default = _default(f, t, report, what) if f.default is not None else _NO_VALUE
        if f.secret and f.default is not None and default not in (None, _NO_VALUE):
            report.warning(f.default.span, "dsl.secret-default",
                           f"the default of secret {what} '{f.name.name}' is written in the "
                           "file in clear: whoever reads the workflow reads it",
                           "pass the value when the run starts, or read it from "
                           "secret.NAME in the job that needs it")
        specs[f.name.name] = InputSpec(
            f.name.name, t, None if default is _NO_VALUE else default,
            default is not _NO_VALUE, f.optional, None, f.span, f.secret)
    return tuple(specs.values())


def _default(f: ast.FieldDecl, t: TypeRef, report: Reporter, what: str) -> Any:
    assert f.default is not None
    value = constant(f.default)
    if value is _NO_VALUE:
        report.error(f.default.span, "dsl.bad-value",
                     f"the default of {what} '{f.name.name}' must be a literal value")
    elif value is None and not f.optional and t.name not in ("any", "null"):
        report.error(f.default.span, "dsl.type",
                     f"{what} '{f.name.name}' defaults to null; declare it optional "
                     f"('{f.name.name}?: {t}') or give {article(str(t))} default")
    elif value is not None and not value_fits(t, value):
        report.error(f.default.span, "dsl.type",
                     f"the default of {what} '{f.name.name}' does not match its type {t}")
    else:
        return value
    return _NO_VALUE


def record(specs: Sequence[InputSpec], what: str, code: str, *,
           null_means_default: bool = False) -> Shape:
    """The shape of `input` (or a template's output) for expressions.

    An optional field may be null at run time: when absent without a default, or when
    given null explicitly, unless `null_means_default` (a run's inputs: null given for an
    input with a default takes the default, see core.inputs).
    """
    from baseshift.core.schema import OBJECT

    return Shape(OBJECT, {s.name: shape_of(s.type, _null_when(s, what, null_means_default))
                          for s in specs}, what, code)


def _null_when(s: InputSpec, what: str, null_means_default: bool) -> str:
    if not s.optional or (null_means_default and s.has_default and s.default is not None):
        return ""
    owner = what.split(" (")[0]
    return f"'{s.name}' of {owner} is optional" if owner != "input" \
        else f"input '{s.name}' is optional"


def secret_reads(e: Expr, inputs: Sequence[InputSpec],
                 outputs: Mapping[str, tuple[frozenset[str], bool]] | None = None,
                 ) -> list[tuple[str, Span]]:
    """What in `e` reads a secret, each with its span and how a message names it: a
    `secret.X`, a `secret` input (`input.token`, or the whole `input` object when it holds
    one) and a `secret` output of a job (`outputs`: job name -> its secret output fields and
    whether it fans out). Anything built from one reads it too (`upper(input.token)`)."""
    hidden = {s.name for s in inputs if s.secret}
    found: list[tuple[str, Span]] = []
    for root, path, span in references(e):
        if root == "secret":
            found.append((f"the secret '{path[0]}'" if path else "secrets", span))
        elif root == "input" and hidden and (not path or path[0] in hidden):
            found.append((f"the secret input '{path[0]}'" if path
                          else "input (it holds secret inputs)", span))
        elif outputs and root in outputs and outputs[root][0]:
            fields, fans_out = outputs[root]
            named = path[2:3] if fans_out else path[1:2]
            if path[:1] != ("output",) or (named and named[0] not in fields):
                continue
            found.append((f"the secret output '{named[0]}' of job '{root}'" if named
                          else f"the output of job '{root}' (it holds secret fields)", span))
    return found


def object_schema(specs: Sequence[InputSpec], *, closed: bool = True) -> dict[str, Any]:
    """The JSON Schema of a template's inputs (closed: unknown inputs are errors) or outputs
    (open: extra output fields break no caller); defaults included."""
    properties: dict[str, Any] = {}
    for s in specs:
        schema = to_json_schema(s.type)
        if s.secret:
            schema = secret_schema(schema, s.type)
        if s.optional and schema:  # an optional value may be passed as null
            schema = {"anyOf": [schema, {"type": "null"}]}
        properties[s.name] = schema | ({"default": s.default} if s.has_default else {})
    return {"type": "object", "properties": properties,
            "required": [s.name for s in specs if s.required], "additionalProperties": not closed}


def duration(text: str, span: Span, what: str, report: Reporter) -> float | None:
    """Seconds of a duration, or None after reporting a bad unit or a zero duration."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        report.error(span, "dsl.bad-duration", f"{what}: {exc}")
        return None
    if seconds <= 0:
        report.error(span, "dsl.bad-duration", f"{what} must be longer than zero, not '{text}'")
        return None
    return seconds


def retry_policy(r: ast.Retry, report: Reporter) -> RetryPolicy:
    """The RetryPolicy a `retry` statement describes (defaults for the parts left out)."""
    count = r.count.value
    if not isinstance(count, int) or count < 0:
        report.error(r.count.span, "dsl.bad-value",
                     f"the retry count must be a whole number of at least 0, not {count}")
        count = 0
    settings: dict[str, float] = {}
    seen: dict[str, ast.RetryOption] = {}
    for option in r.options:
        slot = "factor" if option.kind in ("factor", "exponential", "fixed") else option.kind
        if slot in seen:
            report.error(option.span, "dsl.duplicate",
                         f"the retry {slot} is already set by '{_option_text(seen[slot])}'")
            continue
        seen[slot] = option
        value = _retry_value(option, report)
        if value is not None:
            settings[slot] = value
    policy = RetryPolicy(count, settings.get("backoff", _DEFAULTS.delay),
                         settings.get("factor", _DEFAULTS.factor),
                         settings.get("max", _DEFAULTS.max_delay),
                         settings.get("jitter", _DEFAULTS.jitter))
    if r.count.value == 0 and r.options:
        report.error(r.options[0].span, "dsl.bad-value",
                     f"'retry 0' never retries, so '{_option_text(r.options[0])}' has no effect",
                     "retry at least once ('retry 1 ...'), or remove the retry statement")
    if policy.max_delay < policy.delay:
        _cap_below_first_delay(r, seen, report)
    return policy


_DEFAULTS = RetryPolicy()
"""The retry options a `retry N` statement leaves out."""


def _written(seconds: float) -> str:
    """A whole number of seconds as the language writes a duration (300 -> 5m)."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _cap_below_first_delay(r: ast.Retry, seen: Mapping[str, ast.RetryOption],
                           report: Reporter) -> None:
    """`max` caps every delay, so a cap below `backoff` (the first delay) silently replaces
    the backoff and the factor: the retries would all wait `max`."""
    cap, first = seen.get("max"), seen.get("backoff")
    if cap is not None and first is not None:
        report.error(cap.span, "dsl.bad-value",
                     f"retry max {cap.text} is shorter than backoff {first.text} (the first delay)",
                     f"every delay is capped at max, so each retry would wait {cap.text}; make "
                     f"max at least {first.text}, or lower backoff")
    elif first is not None:
        report.error(first.span, "dsl.bad-value",
                     f"retry backoff {first.text} is longer than the default max of "
                     f"{_written(_DEFAULTS.max_delay)} (the longest delay)",
                     f"add 'max {first.text}' (or longer), or lower backoff")
    elif cap is not None:
        report.error(cap.span, "dsl.bad-value",
                     f"retry max {cap.text} is shorter than the default backoff of "
                     f"{_written(_DEFAULTS.delay)} (the first delay)",
                     f"add 'backoff {cap.text}' (or shorter), or make max at least "
                     f"{_written(_DEFAULTS.delay)}")


def labels(r: ast.RunsOn | None, report: Reporter, owner: str) -> tuple[str, ...] | None:
    """The sorted labels of `runs-on` (None without one); a label listed twice is reported,
    since it is almost always a typo for another label."""
    if r is None:
        return None
    seen: set[str] = set()
    for label in r.labels:
        if label.name in seen:
            report.error(label.span, "dsl.duplicate", f"{owner} lists label '{label.name}' twice",
                         "a worker must have every label listed, so once is enough; "
                         "remove this one (or fix its spelling)")
        seen.add(label.name)
    return tuple(sorted(seen))


def _option_text(o: ast.RetryOption) -> str:
    return f"{o.kind} {o.text}".strip()


def _retry_value(o: ast.RetryOption, report: Reporter) -> float | None:
    if o.kind in ("backoff", "max"):
        return duration(o.text, o.span, f"retry {o.kind}", report)
    if o.kind in ("exponential", "fixed"):
        return 2.0 if o.kind == "exponential" else 1.0
    if o.kind == "factor":
        factor = float(o.text)
        if factor <= 0:
            report.error(o.span, "dsl.bad-value",
                         f"the retry factor must be positive, not {o.text}")
            return None
        return factor
    jitter = float(o.text.rstrip("%")) / (100 if o.text.endswith("%") else 1)
    if not 0 <= jitter <= 1:
        report.error(o.span, "dsl.bad-value",
                     f"jitter must be a fraction from 0 to 1 or a percentage up to 100%, "
                     f"not {o.text}")
        return None
    return jitter


def check_config(report: Reporter, job: str, executor: str, schema: Mapping[str, Any],
                 values: ObjectExpr, types: Sequence[TypeRef], where: Span) -> None:
    """Check a `with` block against an executor's config JSON Schema."""
    props: Mapping[str, Any] = schema.get("properties") or {}
    keys = values.keys()
    for name in schema.get("required") or ():
        if name not in keys:
            report.error(where, "dsl.config",
                         f"job '{job}' (executor {executor}) is missing required setting '{name}'",
                         f"add it: with {{ {name}: ... }}")
    _check_alternatives(report, job, executor, schema, keys, where)
    _check_exclusive(report, job, executor, schema, keys, where)
    closed = schema.get("additionalProperties", True) is False
    owner = f"executor {executor}"
    for (key, value), t in zip(values.fields, types, strict=True):
        prop = props.get(key)
        if prop is None:
            if closed:
                report.error(report.key_span(value), "dsl.config",
                             f"executor {executor} has no setting '{key}'",
                             did_you_mean(key, props, "its settings"))
            continue
        if _check_json_type(report, ("setting", key, owner), prop, value, t):
            _check_literal(report, key, owner, prop, value)


def _check_literal(report: Reporter, key: str, owner: str, prop: Mapping[str, Any],
                   value: Expr) -> None:
    """A setting written as a literal must satisfy its schema (enum, pattern, minimum...)."""
    literal = constant(value)
    if literal is _NO_VALUE or not isinstance(prop, Mapping):
        return
    cached = _VALIDATORS.get(id(prop))
    if cached is None or cached[0] is not prop:
        cached = _VALIDATORS[id(prop)] = (prop, Draft202012Validator(dict(prop)))
    validator = cached[1]
    error = best_match(validator.iter_errors(literal))
    if error is not None:
        about = prop.get("description")
        report.error(value.span, "dsl.config", f"setting '{key}' of {owner} {plain(error)}",
                     about if isinstance(about, str) else None)


_VALIDATORS: dict[int, tuple[Mapping[str, Any], Draft202012Validator]] = {}
"""Compiled schemas of executor settings, with the schema kept so its id stays its own."""


def _check_exclusive(report: Reporter, job: str, executor: str, schema: Mapping[str, Any],
                     keys: Sequence[str], where: Span) -> None:
    """`not: {required: [a, b]}`: settings that cannot be given together."""
    banned = schema.get("not")
    if not isinstance(banned, Mapping) or len(banned) != 1:
        return
    together = banned.get("required")
    if together and all(k in keys for k in together):
        names = "', '".join(together)
        report.error(where, "dsl.config",
                     f"job '{job}' (executor {executor}) cannot take the settings "
                     f"'{names}' together")


def _check_alternatives(report: Reporter, job: str, executor: str, schema: Mapping[str, Any],
                        keys: Sequence[str], where: Span) -> None:
    """`oneOf: [{required: [a]}, {required: [b]}]`: exactly one of the settings is needed."""
    one_of = schema.get("oneOf")
    if not one_of:
        return
    groups = [list(o["required"]) for o in one_of
              if isinstance(o, Mapping) and o.get("required")]
    if len(groups) != len(one_of):
        return
    met = sum(all(k in keys for k in g) for g in groups)
    if met == 1:
        return
    names = " or ".join("'" + "', '".join(g) + "'" for g in groups)
    verb = "needs one" if met == 0 else "takes only one"
    report.error(where, "dsl.config",
                 f"job '{job}' (executor {executor}) {verb} of the settings {names}")


def _check_json_type(report: Reporter, what: tuple[str, str, str], prop: Mapping[str, Any],
                     value: Expr, t: TypeRef) -> bool:
    """`what` is (kind, key, owner), made into words only when there is an error.

    Returns whether the type fits (so finer checks of the value are worth making)."""
    wanted = prop.get("type") if isinstance(prop, Mapping) else None
    if wanted is None or t.name == "any":
        return True
    names = [wanted] if isinstance(wanted, str) else list(wanted)
    if any(t.name in _JSON_TYPES.get(n, set()) for n in names):
        return True
    kind, key, owner = what
    report.error(value.span, "dsl.config", f"{kind} '{key}' of {owner} must be "
                 f"{' or '.join(article(n) for n in names)}, not {t}")
    return False


def check_template_inputs(report: Reporter, job: str, template: TemplateSpec,
                          values: ObjectExpr, types: Sequence[TypeRef], where: Span) -> None:
    """Check a template job's `with` block against the template's declared inputs."""
    inputs = {i.name: i for i in template.inputs}
    keys = values.keys()
    for spec in template.inputs:
        if spec.required and spec.name not in keys:
            report.error(where, "dsl.config",
                         f"job '{job}' does not pass required input '{spec.name}' of template "
                         f"{template.ref}", f"add it: with {{ {spec.name}: ... }}")
    for (key, value), t in zip(values.fields, types, strict=True):
        given = inputs.get(key)
        if given is None:
            report.error(report.key_span(value), "dsl.config",
                         f"template {template.ref} has no input '{key}'",
                         did_you_mean(key, inputs, "its inputs"))
        elif t.name != "any" and not given.type.accepts(t) and not (
                t.name == "null" and not given.required):
            report.error(value.span, "dsl.config",
                         f"input '{key}' of template {template.ref} is "
                         f"{article(str(given.type))}, not {article(str(t))}")
