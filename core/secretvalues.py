"""Values declared `secret` (run inputs, template output fields): sealed where they are
stored, opened only to run a job, `***` wherever they are shown.

A secret input is sealed (`core.sealing.Sealer`) before the run is stored; a secret output
field is sealed before the job's output is stored. Each value is sealed as its JSON text, so
a list or a number comes back as it went in. Whatever reads one in a job's `with` block is
evaluated again with the opened values just before the attempt runs; the job's stored
inputs show `***` for every field built from one (`stored_config`).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import replace
from typing import Any

from .errors import ExpressionError
from .expr import Expr, Interp, ListExpr, Literal, ObjectExpr, children, evaluate, references
from .plan import InputSpec, JobSpec, Plan
from .scope import REDACTED
from .sealing import Sealer, is_sealed


def secret_inputs(plan: Plan) -> frozenset[str]:
    """The names of the plan's `secret` inputs."""
    return frozenset(i.name for i in plan.inputs if i.secret)


def secret_outputs(spec: JobSpec) -> frozenset[str]:
    """The `secret` output fields of a job's template (none for other jobs)."""
    if spec.template is None:
        return frozenset()
    return frozenset(o.name for o in spec.template.outputs if o.secret)


def reads_secret(expr: Expr, plan: Plan, *, names: bool = True) -> bool:
    """Whether `expr` reads a secret: `secret.X` (unless not `names`), a secret input (or
    all of `input` when it holds one), or a secret output field of a job (or that job's
    whole output)."""
    hidden = secret_inputs(plan)
    for root, path, _ in references(expr):
        if root == "secret":
            if names:
                return True
            continue
        if root == "input" and hidden and (not path or path[0] in hidden):
            return True
        spec = plan.by_name.get(root)
        fields = secret_outputs(spec) if spec is not None else frozenset()
        if fields and path[:1] == ("output",):
            named = path[2:3] if spec is not None and spec.fanout else path[1:2]
            if not named or named[0] in fields:
                return True
    return False


def secret_jobs(expr: Expr, plan: Plan) -> list[str]:
    """The jobs with secret output fields that `expr` reads."""
    return list(dict.fromkeys(root for root, _, _ in references(expr)
                              if root in plan.by_name and secret_outputs(plan.job(root))))


def interpolated(expr: Expr, scope: Mapping[str, Any], reads: Callable[[Expr], bool]
                 ) -> list[Any]:
    """The values of the `${...}` parts inside `expr`'s strings that read a secret
    (`"push --token ${upper(input.token)}"` gives the upper-cased token): what a masker must
    also hide, since only the whole string is otherwise known to be built from a secret."""
    found: list[Any] = []
    todo = [expr]
    while todo:
        e = todo.pop()
        if isinstance(e, Interp):
            for part in e.parts:
                if not isinstance(part, str) and reads(part):
                    with suppress(ExpressionError):
                        found.append(evaluate(part, scope))
        todo.extend(children(e))
    return found


def stored_config(spec: JobSpec, scope: Mapping[str, Any], plan: Plan) -> Any:
    """A job's `with` block as stored and shown: every value that reads a secret input or
    output is `***` (inside a string, just its `${...}` part), and so is a value passed to
    a secret input of the job's template; `secret.X` reads as `scope` says (`***`)."""
    hidden = frozenset(i.name for i in spec.template.inputs if i.secret) \
        if spec.template is not None else frozenset()
    config = spec.config
    return {key: REDACTED if key in hidden else _stored(value, scope, plan)
            for key, value in config.fields}


def _stored(expr: Expr, scope: Mapping[str, Any], plan: Plan) -> Any:
    if isinstance(expr, ObjectExpr):
        return {key: _stored(value, scope, plan) for key, value in expr.fields}
    if isinstance(expr, ListExpr):
        return [_stored(item, scope, plan) for item in expr.items]
    if not reads_secret(expr, plan, names=False):
        return evaluate(expr, scope)
    if isinstance(expr, Interp):
        parts = tuple(Literal(REDACTED) if not isinstance(p, str)
                      and reads_secret(p, plan, names=False) else p for p in expr.parts)
        return evaluate(replace(expr, parts=parts), scope)
    return REDACTED


async def seal_inputs(sealer: Sealer, declared: Sequence[InputSpec],
                      values: Mapping[str, Any]) -> dict[str, Any]:
    """The run's inputs as stored: each secret one sealed (null stays null)."""
    out = dict(values)
    for spec in declared:
        if spec.secret and out.get(spec.name) is not None:
            out[spec.name] = await sealer.seal(_text(out[spec.name]))
    return out


async def open_inputs(sealer: Sealer, declared: Sequence[InputSpec],
                      stored: Mapping[str, Any]) -> dict[str, Any]:
    """The run's inputs with each sealed secret one opened (to render a job's config)."""
    out = dict(stored)
    for spec in declared:
        if spec.secret and is_sealed(out.get(spec.name)):
            out[spec.name] = json.loads(await sealer.unseal(out[spec.name]))
    return out


async def seal_output(sealer: Sealer, fields: frozenset[str], output: Any) -> Any:
    """A template job's output as stored: its secret fields sealed."""
    if not fields or not isinstance(output, dict):
        return output
    return {k: await sealer.seal(_text(v)) if k in fields and v is not None else v
            for k, v in output.items()}


async def open_output(sealer: Sealer, fields: frozenset[str], output: Any) -> Any:
    """A stored job output with its sealed secret fields opened (a fan-out job's output is
    the list of its instances' outputs)."""
    if isinstance(output, list):
        return [await open_output(sealer, fields, item) for item in output]
    if not isinstance(output, dict):
        return output
    return {k: json.loads(await sealer.unseal(v)) if k in fields and is_sealed(v) else v
            for k, v in output.items()}


def hidden(value: Any) -> Any:
    """`value` as shown: every sealed value inside it (at any depth) is `***`."""
    if is_sealed(value):
        return REDACTED
    if isinstance(value, dict):
        return {k: hidden(v) for k, v in value.items()}
    if isinstance(value, list):
        return [hidden(v) for v in value]
    return value


async def revealed(sealer: Callable[[], Sealer], value: Any) -> Any:
    """`value` with every sealed value inside it opened (for an actor with `secret:read`);
    `sealer` is asked for only when there is one to open."""
    if is_sealed(value):
        return json.loads(await sealer().unseal(value))
    if isinstance(value, dict):
        return {k: await revealed(sealer, v) for k, v in value.items()}
    if isinstance(value, list):
        return [await revealed(sealer, v) for v in value]
    return value


def _text(value: Any) -> str:
    """A value's JSON text, as sealed (non-ASCII kept as is: the text is encrypted whole)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
