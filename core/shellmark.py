"""Marking the shell-script settings of a plan, so that their `${...}` values are quoted.

An executor's config schema names its script settings with `"x-shell"` (see
`core.shellquote`); this marks the `Interp` strings in them (`Interp.shell`) once, when a
plan is built, so that every evaluation of the config — the recorded inputs, the config
with secrets, a template's config and its steps — quotes the same way.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from .expr import Expr, Interp, ListExpr, Literal, ObjectExpr
from .plan import JobSpec, TemplateSpec
from .shellquote import script_index

Schemas = Mapping[str, Mapping[str, Any]]


def mark_config(config: ObjectExpr, schema: Mapping[str, Any] | None) -> ObjectExpr:
    """`config` with the strings of its script settings marked (unchanged if it has none)."""
    props = (schema or {}).get("properties")
    if not isinstance(props, Mapping):
        return config
    kinds = {k: p.get("x-shell") for k, p in props.items() if isinstance(p, Mapping)}
    fields = dict(config.fields)
    changed = False
    for key, value in config.fields:
        if kinds.get(key) == "script" and isinstance(value, Interp):
            fields[key] = dataclasses.replace(value, shell=key)
            changed = True
    argv = [(k, i, item) for k, _ in config.fields if kinds.get(k) == "argv"
            for i, item in _items(fields[k])]
    where = script_index([e.value if isinstance(e, Literal) and isinstance(e.value, str)
                          else None for _, _, e in argv])
    item = argv[where][2] if where is not None else None
    if where is not None and isinstance(item, Interp):
        key, index, _ = argv[where]
        listed = fields[key]
        assert isinstance(listed, ListExpr)
        items = list(listed.items)
        items[index] = dataclasses.replace(item, shell=f"{key}[{index}]")
        fields[key] = dataclasses.replace(listed, items=tuple(items))
        changed = True
    if not changed:
        return config
    return dataclasses.replace(config, fields=tuple((k, fields[k]) for k, _ in config.fields))


def _items(e: Expr) -> Iterator[tuple[int, Expr]]:
    if isinstance(e, ListExpr):
        yield from enumerate(e.items)


def mark_template(t: TemplateSpec, schemas: Schemas) -> TemplateSpec:
    """A template with its config and its steps' configs marked for their executors."""
    steps = tuple(dataclasses.replace(s, config=mark_config(s.config, schemas.get(s.uses)))
                  for s in t.steps)
    return dataclasses.replace(t, config=mark_config(t.config, schemas.get(t.uses)),
                               steps=steps)


def mark_job(spec: JobSpec, schemas: Schemas) -> JobSpec:
    """A job whose executor config (or template) has its script settings marked."""
    if spec.template is not None:
        return dataclasses.replace(spec, template=mark_template(spec.template, schemas))
    return dataclasses.replace(spec, config=mark_config(spec.config, schemas.get(spec.uses)))

