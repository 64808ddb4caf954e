"""The job template store's contract: the template document, its validation, and the protocol
every template store implements (the publishing rules are the templates family's,
`plugins/templates/publishing.py`).

A stored template is a JSON document (the seed's shape):

    {"templateId": "payment.charge", "version": "1.2.0", "description": "...",
     "steps": [{"name": "charge", "type": "http", "config": {"url": "${input.url}"}}],
     "inputSchema": {...JSON Schema...}, "outputSchema": {...JSON Schema...}}

Backends (`kind = "templates"`) implement `TemplateStore` and call `check_publish` so every
backend applies the same rules.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol, runtime_checkable

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from .audit import AuditEntry
from .errors import Conflict, InputError, NotFound
from .plan import TemplateSpec
from .semver import Version, VersionError

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")
"""Template names are the DSL's dotted names (`payment.charge`), so `uses NAME@^1` works."""
STEP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_NAME = 200
DOCUMENT_KEYS = frozenset({"templateId", "name", "version", "description", "steps",
                           "inputSchema", "outputSchema", "created_at"})
STEP_KEYS = frozenset({"name", "type", "config"})
EMPTY_INPUT: dict[str, Any] = {"type": "object", "properties": {}}
MAX_DEPTH = 64
"""Deeper documents are refused: every later step (schema checks, conversion) recurses."""

JsonPath = tuple[str | int, ...]


class TemplateError(InputError):
    """A template document is invalid; `path` locates the bad field (`$.steps[0].type`)."""

    code = "template.invalid"

    def __init__(self, path: JsonPath, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"{json_path(path)}: {message}", hint=hint,
                         details={"field": json_path(path)})
        self.path = path
        self.detail = message


class TemplateIncompatible(Conflict):
    """A minor or patch version would break callers of an earlier version in its line."""

    code = "template.incompatible"

    def __init__(self, message: str, reasons: Sequence[str]) -> None:
        super().__init__(message, hint="publish it as a new major version (bump major)",
                         details={"reasons": list(reasons)})
        self.reasons = list(reasons)


class TemplateExists(Conflict):
    code = "template.exists"


class TemplateReadOnly(Conflict):
    """A template defined in a workflow folder's file cannot be published over or deleted
    through the store's faces: the file is what the server reloads."""

    code = "template.read-only"

    def __init__(self, ref: str, path: str) -> None:
        super().__init__(f"template {ref} is defined in the file {path}; templates defined in "
                         "files are read-only here", hint="edit or delete the file instead, "
                         "or publish the template under another name",
                         details={"path": path})
        self.path = path


def json_path(path: JsonPath) -> str:
    """`("steps", 0, "type")` -> `$.steps[0].type`."""
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


class Bump(StrEnum):
    MAJOR = "major"
    MINOR = "minor"
    PATCH = "patch"


@dataclass(frozen=True, slots=True)
class StepDocument:
    """One step: an executor (`type`) and its JSON config (strings may hold `${...}`)."""

    name: str
    type: str
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "config": self.config}


@dataclass(frozen=True, slots=True)
class TemplateDocument:
    """A published (or to-be-published) template version."""

    name: str
    version: str
    steps: tuple[StepDocument, ...]
    input_schema: dict[str, Any] = field(default_factory=lambda: dict(EMPTY_INPUT))
    output_schema: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    created_at: float | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def semver(self) -> Version:
        return Version.parse(self.version)

    @property
    def types(self) -> tuple[str, ...]:
        """The executors its steps use, in step order."""
        return tuple(s.type for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {
            "templateId": self.name,
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "steps": [s.to_json() for s in self.steps],
            "inputSchema": self.input_schema,
            "outputSchema": self.output_schema,
            "created_at": self.created_at,
        }


# ------------------------------------------------------------------ reading documents


def parse_document(data: Any, *, need_version: bool = True) -> TemplateDocument:
    """Validate a JSON (or YAML) value as a template document.

    With `need_version=False` the version may be left out (it is then derived by a bump);
    the document's version is then "".

    Raises:
        TemplateError: naming the JSON path of the first bad field.
    """
    obj = _object(data, ())
    if _depth(obj) > MAX_DEPTH:
        raise TemplateError((), f"is nested deeper than {MAX_DEPTH} levels")
    unknown = sorted(set(obj) - DOCUMENT_KEYS)
    if unknown:
        raise TemplateError((unknown[0],), "unknown field",
                            hint=f"known fields: {', '.join(sorted(DOCUMENT_KEYS))}")
    created = obj.get("created_at")
    return TemplateDocument(
        name=_name(obj),
        version=_version(obj, need_version),
        steps=_steps(obj.get("steps")),
        input_schema=_schema(obj, "inputSchema", EMPTY_INPUT, want_object=True),
        output_schema=_schema(obj, "outputSchema", {}, want_object=False),
        description=_optional_text(obj, "description"),
        created_at=float(created) if isinstance(created, int | float) else None,
    )


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, without recursion (it may be very deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        if isinstance(item, Mapping):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


def _object(value: Any, path: JsonPath) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TemplateError(path, f"must be an object, not {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    from .expr import type_name

    return type_name(value)


def _name(obj: Mapping[str, Any]) -> str:
    given = {k: obj[k] for k in ("templateId", "name") if k in obj}
    if not given:
        raise TemplateError((), "has no name", hint='add "templateId": "my.template"')
    for key, value in given.items():
        if not isinstance(value, str) or not NAME.fullmatch(value) or len(value) > MAX_NAME:
            raise TemplateError((key,), f"{value!r} is not a template name",
                                hint="use letters, digits and _ in dot-separated parts, "
                                "like payment.charge")
    if len(set(given.values())) > 1:
        raise TemplateError(("name",), "differs from templateId; give one of them")
    return str(next(iter(given.values())))


def _version(obj: Mapping[str, Any], need: bool) -> str:
    value = obj.get("version")
    if value is None and not need:
        return ""
    if not isinstance(value, str):
        raise TemplateError(("version",), "is missing" if value is None else
                            f"must be a string, not {_kind(value)}",
                            hint='like "1.0.0", or publish with a bump')
    try:
        return str(Version.parse(value))
    except VersionError as exc:
        raise TemplateError(("version",), str(exc)) from None


def _optional_text(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise TemplateError((key,), f"must be a string, not {_kind(value)}")
    return value


def _steps(value: Any) -> tuple[StepDocument, ...]:
    if not isinstance(value, list) or not value:
        raise TemplateError(("steps",), "must be a non-empty list of steps",
                            hint='like [{"name": "run", "type": "shell", "config": {...}}]')
    steps = tuple(_step(item, i) for i, item in enumerate(value))
    seen: set[str] = set()
    for i, step in enumerate(steps):
        if step.name in seen:
            raise TemplateError(("steps", i, "name"), f"step name {step.name!r} is used twice")
        seen.add(step.name)
    return steps


def _step(value: Any, i: int) -> StepDocument:
    obj = _object(value, ("steps", i))
    unknown = sorted(set(obj) - STEP_KEYS)
    if unknown:
        raise TemplateError(("steps", i, unknown[0]), "unknown field",
                            hint="a step has name, type and config")
    name, kind = obj.get("name", f"step{i + 1}"), obj.get("type")
    if not isinstance(name, str) or not STEP_NAME.fullmatch(name):
        raise TemplateError(("steps", i, "name"), f"{name!r} is not a step name",
                            hint="letters, digits and _")
    if not isinstance(kind, str) or not kind:
        raise TemplateError(("steps", i, "type"), "must name an executor, like shell or http")
    config = obj.get("config", {})
    return StepDocument(name, kind, dict(_object(config, ("steps", i, "config"))))


def _schema(obj: Mapping[str, Any], key: str, default: dict[str, Any], *,
            want_object: bool) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        return dict(default)
    schema = dict(_object(value, (key,)))
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = (key, *[p for p in exc.path if isinstance(p, str | int)])
        raise TemplateError(where, f"is not a valid JSON Schema: {exc.message}") from None
    if want_object and schema.get("type", "object") != "object":
        raise TemplateError((key, "type"), 'must be "object": inputs are named fields')
    return schema


def check_step_types(doc: TemplateDocument, executors: Iterable[str]) -> None:
    """Refuse a step whose type is not an installed executor."""
    known = sorted(executors)
    for i, step in enumerate(doc.steps):
        if step.type not in known:
            raise TemplateError(("steps", i, "type"), f"there is no executor {step.type!r}",
                                hint=f"known executors: {', '.join(known)}")


def not_found(name: str, version: str | None = None) -> NotFound:
    what = f"template {name}@{version}" if version else f"template {name}"
    return NotFound(f"{what} is not published", hint="list them with `baseshift templates list`")


# ------------------------------------------------------------------ the backend protocol


@runtime_checkable
class TemplateStore(Protocol):
    """Where published templates live (`kind = "templates"`, chosen by `settings.templates`).

    `publish` applies the publishing rules (`check_publish`) in the same transaction as its
    insert. `publish` and `delete` append their `audit` entries (core/audit.py) to the trail
    of the store's database in the same transaction; `audit_database` names that database
    (None when the store keeps no trail a state store shares: the caller then gives no
    entries and appends them to the state store's trail itself).
    `specs()` gives every published version as a `TemplateSpec` for the checker.
    """

    kind: ClassVar[str]
    name: ClassVar[str]

    @property
    def audit_database(self) -> str | None: ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, doc: TemplateDocument, bump: Bump | str | None = None,
                      audit: Sequence[AuditEntry] = ()) -> TemplateDocument: ...

    async def get(self, name: str, version: str | None = None) -> TemplateDocument | None:
        """Exact version, a range, or (None) the highest; None when nothing matches."""
        ...

    async def delete(self, name: str, version: str, audit: Sequence[AuditEntry] = ()) -> None:
        """Remove one version; NotFound when it is not published."""
        ...

    async def specs(self) -> list[TemplateSpec]: ...

    async def list(self, name: str | None = None, *, type: str | None = None,
                   version: str | None = None) -> list[TemplateDocument]:
        """Every version (filtered by name, step type, and version range), by name and
        version."""
        ...
