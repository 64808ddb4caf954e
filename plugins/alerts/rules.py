"""An alert rule and its validation: what a `POST /api/v1/alerts` body must hold, each
mistake an InputError (422) naming the field."""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from baseshift.core.errors import InputError
from baseshift.core.notifications import Notifier

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""Rule names: they become audit resources, metric labels and e-mail subjects, so only
letters, digits, `_`, `.` and `-` (never a line break or markup)."""
WORKFLOW = re.compile(r"[^\x00-\x1f\x7f]{1,200}")
FIELDS = {"name", "kind", "params", "notify", "enabled", "repeat", "for"}
MAX_TARGETS = 10


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a rule kind: its type (`seconds`, `count`, `ratio`, `workflow`),
    whether it is required and its default."""

    type: str
    required: bool = False
    default: Any = None


KINDS: dict[str, dict[str, Param]] = {
    "failure_rate": {"workflow": Param("workflow"), "window": Param("seconds", default=3600.0),
                     "threshold": Param("ratio", required=True),
                     "min_runs": Param("count", default=1)},
    "run_duration": {"workflow": Param("workflow"), "expected": Param("seconds", True)},
    "queue_lag": {"max_wait": Param("seconds"), "max_depth": Param("count")},
    "no_worker": {"seconds": Param("seconds", True)},
}
"""The rule kinds and their parameters (docs/operations.md, "Alert rules")."""


@dataclass(frozen=True, slots=True)
class Rule:
    """An alert rule. `repeat`: seconds between reminders while an alert fires (None: no
    reminder); `hold`: seconds the condition must last before an alert fires (the JSON
    field `for`; before that it is pending)."""

    name: str
    kind: str
    params: Mapping[str, Any]
    notify: tuple[Mapping[str, Any], ...] = ()
    enabled: bool = True
    repeat: float | None = None
    hold: float = 0.0
    created_at: float = 0.0
    updated_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "params": dict(self.params),
                "notify": [dict(t) for t in self.notify], "enabled": self.enabled,
                "repeat": self.repeat, "for": self.hold, "created_at": self.created_at,
                "updated_at": self.updated_at}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Rule:
        """A stored rule (trusted: it was checked when it was saved)."""
        return cls(str(data["name"]), str(data["kind"]), dict(data.get("params") or {}),
                   tuple(dict(t) for t in data.get("notify") or ()),
                   bool(data.get("enabled", True)), _opt_float(data.get("repeat")),
                   float(data.get("for") or 0.0), float(data.get("created_at") or 0.0),
                   float(data.get("updated_at") or 0.0))


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _bad(field_name: str, message: str, hint: str | None = None) -> InputError:
    return InputError(f"field '{field_name}' {message}", hint=hint,
                      details={"field": field_name})


def check_name(value: Any, field_name: str = "name") -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise _bad(field_name, "must be 1 to 64 letters, digits, '_', '.' or '-', starting "
                   "with a letter or digit")
    return value


def _number(value: Any, field_name: str, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value) or value <= 0 or (integer and value != int(value)):
        raise _bad(field_name, f"must be a positive {'integer' if integer else 'number'}")
    return value


def _param(spec: Param, value: Any, field_name: str) -> Any:
    match spec.type:
        case "seconds":
            return float(_number(value, field_name))
        case "count":
            return int(_number(value, field_name, integer=True))
        case "ratio":
            number = _number(value, field_name)
            if number > 1:
                raise _bad(field_name, "must be a ratio above 0 and at most 1 (0.2 for 20 %)")
            return float(number)
        case _:
            if not isinstance(value, str) or not WORKFLOW.fullmatch(value):
                raise _bad(field_name, "must be a workflow name (1 to 200 characters, no "
                           "control characters)")
            return value


def _hold(value: Any) -> float:
    """`for`: seconds (0, the default, fires at the first evaluation that finds it)."""
    if value is None or (type(value) in (int, float) and value == 0):
        return 0.0
    return float(_number(value, "for"))


def check_params(kind: str, value: Any) -> dict[str, Any]:
    """The parameters of a rule of `kind`, defaults filled in."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise _bad("params", "must be a JSON object")
    specs = KINDS[kind]
    unknown = sorted(set(value) - set(specs))
    if unknown:
        raise _bad(f"params.{unknown[0]}", f"is not a parameter of kind '{kind}'",
                   hint=f"its parameters: {', '.join(specs)}")
    params: dict[str, Any] = {}
    for name, spec in specs.items():
        if value.get(name) is None:
            if spec.required:
                raise _bad(f"params.{name}", f"is required for kind '{kind}'")
            if spec.default is not None:
                params[name] = spec.default
            continue
        params[name] = _param(spec, value[name], f"params.{name}")
    if kind == "queue_lag" and not params:
        raise _bad("params", "needs max_wait (seconds) or max_depth (jobs), or both")
    return params


def check_notify(value: Any, notifiers: Mapping[str, Notifier]) -> tuple[dict[str, Any], ...]:
    """The rule's notification targets, each checked by the notifier it names."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_TARGETS:
        raise _bad("notify", f"must be a list of at most {MAX_TARGETS} targets")
    targets = []
    for i, target in enumerate(value):
        where = f"notify[{i}]"
        if not isinstance(target, dict):
            raise _bad(where, "must be a JSON object with a 'type'")
        kind = target.get("type")
        notifier = notifiers.get(kind) if isinstance(kind, str) else None
        if notifier is None:
            raise _bad(f"{where}.type", f"must name a notifier: {', '.join(sorted(notifiers))}")
        targets.append({**notifier.check_target(target, where), "type": notifier.name})
    return tuple(targets)


def parse_rule(body: Mapping[str, Any], notifiers: Mapping[str, Notifier],
               refuse_kind: Callable[[str], str | None], now: float,
               name: str | None = None) -> Rule:
    """A rule from a request body (`name` from the path for a PUT, where the body may omit
    it). `refuse_kind` says why this server cannot evaluate a kind (None: it can)."""
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise _bad(unknown[0], "is not a field of an alert rule",
                   hint=f"the fields: {', '.join(sorted(FIELDS))}")
    if name is not None and body.get("name", name) != name:
        raise _bad("name", "must be the name in the path (a rule cannot be renamed)")
    rule_name = check_name(body.get("name", name))
    kind = body.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise _bad("kind", f"must be one of: {', '.join(KINDS)}")
    refused = refuse_kind(kind)
    if refused:
        raise _bad("kind", refused)
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _bad("enabled", "must be true or false")
    repeat = body.get("repeat")
    hold = body.get("for")
    return Rule(rule_name, kind, check_params(kind, body.get("params")),
                check_notify(body.get("notify"), notifiers), enabled,
                None if repeat is None else float(_number(repeat, "repeat")),
                _hold(hold), now, now)
