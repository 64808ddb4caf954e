"""Checking run inputs against a workflow's declared inputs before a run is accepted."""
from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from .diagnostics import article
from .errors import InputError
from .json_text import has_surrogate, surrogate_message, surrogate_path
from .plan import InputSpec
from .schema import coerce


def prepare_inputs(declared: Sequence[InputSpec], given: Mapping[str, Any]) -> dict[str, Any]:
    """Return the run's inputs: every declared name, defaults filled in, values type-checked.

    Raises InputError naming the field for an unknown name, a missing required input or a
    value of the wrong type or text that is not Unicode (a lone surrogate, from a `\\ud800`
    JSON escape or bytes that were not UTF-8: every way in - API, forms, CLI, webhooks -
    ends here). Nothing is stored before this passes.
    """
    _refuse_surrogates(given)
    names = [i.name for i in declared]
    for key in given:
        if key not in names:
            raise InputError(f"unknown input '{key}'", hint=_suggest(key, names),
                             details={"field": key})
    out: dict[str, Any] = {}
    for spec in declared:
        if spec.name in given and given[spec.name] is not None:
            out[spec.name] = _coerce(spec, given[spec.name])
        elif spec.has_default:
            out[spec.name] = spec.default
        elif spec.optional:
            out[spec.name] = None
        else:
            raise InputError(f"missing required input '{spec.name}' ({spec.type})",
                             hint=f"pass it with --input {spec.name}=VALUE",
                             details={"field": spec.name})
    _refuse_surrogates(out)  # a text input typed as a list or object is JSON with escapes
    return out


def _refuse_surrogates(values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        path = surrogate_path({key: value})
        if path is not None:
            named = "an input's name" if has_surrogate(key) else f"input '{key}'"
            raise InputError(f"{named}: {surrogate_message(path)}",
                             hint="inputs must be UTF-8 text", details={"field": path})


def _coerce(spec: InputSpec, value: Any) -> Any:
    try:
        return coerce(spec.type, value, f"input '{spec.name}'")
    except InputError as exc:
        if spec.secret:  # the message would show (part of) the value
            raise InputError(f"secret input '{spec.name}' must be {article(str(spec.type))}",
                             hint=exc.hint, details={"field": spec.name}) from None
        exc.details.setdefault("field", spec.name)
        raise


def _suggest(key: str, names: list[str]) -> str:
    close = difflib.get_close_matches(key, names, n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"declared inputs: {', '.join(names)}" if names else "this workflow takes no inputs"
