"""Limits on what a request may carry, declared once: each declaration gives the JSON Schema
the OpenAPI document shows and the check the server applies, so the two cannot drift.

Query parameters are `Param`s (`TextParam`, `IntParam`, `FlagParam`, `TimeParam`): a view
lists them in its `@operation(params=...)` and reads them with `param.read(request)`. An
empty optional query parameter (`?workflow=`) counts as absent, so its schema admits "".
Patterns are written once, unanchored, in the syntax JSON Schema and Python share; the
server matches the whole value, as JSON Schema's anchored pattern does.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Protocol

from starlette.requests import Request

from baseshift.core.errors import BadRequest
from baseshift.core.semver_syntax import MAX_LENGTH, RANGE_PATTERN, VERSION_PATTERN


class Param(Protocol):
    """A declared query parameter: the document lists it, the view reads it through it."""

    @property
    def name(self) -> str: ...

    @property
    def required(self) -> bool: ...

    def schema(self) -> dict[str, Any]: ...


def _bad(name: str, message: str, hint: str | None = None) -> BadRequest:
    return BadRequest(f"query parameter '{name}' {message}", hint=hint,
                      details={"parameter": name})


@dataclass(frozen=True, slots=True)
class Text:
    """A string: length bounds and a pattern (unanchored; the whole value must match)."""

    pattern: str | None = None
    min_length: int = 0
    max_length: int | None = None
    description: str | None = None
    hint: str | None = None

    def schema(self, *, empty: bool = False) -> dict[str, Any]:
        """The JSON Schema; `empty` also admits "" (an optional query parameter left blank)."""
        out: dict[str, Any] = {"type": "string"}
        if self.pattern is not None:
            out["pattern"] = f"^(?:{self.pattern}){'?' if empty else ''}$"
        if self.min_length and not empty:
            out["minLength"] = self.min_length
        if self.max_length is not None:
            out["maxLength"] = self.max_length
        if self.description:
            out["description"] = self.description
        return out

    def accepts(self, value: object) -> bool:
        return (isinstance(value, str) and len(value) >= self.min_length
                and (self.max_length is None or len(value) <= self.max_length)
                and (self.pattern is None or re.fullmatch(self.pattern, value) is not None))


@dataclass(frozen=True, slots=True)
class TextParam:
    """A string query parameter checked against its `Text`."""

    name: str
    text: Text = Text()
    required: bool = False

    def schema(self) -> dict[str, Any]:
        return self.text.schema(empty=not self.required)

    def read(self, request: Request) -> str | None:
        raw = request.query_params.get(self.name)
        if not raw:
            if self.required:
                raise _bad(self.name, "is required", self.text.hint)
            return None
        if not self.text.accepts(raw):
            raise _bad(self.name, f"has the malformed value {raw!r}", self.text.hint)
        return raw


@dataclass(frozen=True, slots=True)
class IntParam:
    """An integer query parameter within `low..high`."""

    name: str
    low: int
    high: int
    default: int
    required: bool = False

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.low, "maximum": self.high,
                "default": self.default}

    def read(self, request: Request) -> int:
        raw = request.query_params.get(self.name)
        if not raw:
            return self.default
        if re.fullmatch(r"-?[0-9]{1,18}", raw) is None or not self.low <= int(raw) <= self.high:
            raise _bad(self.name, f"must be an integer from {self.low} to {self.high}, "
                                  f"got {raw!r}")
        return int(raw)


@dataclass(frozen=True, slots=True)
class FlagParam:
    """A boolean query parameter: `true` or `false`, as OpenAPI writes booleans in a query."""

    name: str
    required: bool = False

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean", "default": False}

    def read(self, request: Request) -> bool:
        raw = request.query_params.get(self.name, "false")
        if raw not in ("true", "false"):
            raise _bad(self.name, f"must be true or false, got {raw!r}")
        return raw == "true"


EPOCH_SECONDS = r"-?[0-9]{1,15}(?:\.[0-9]{1,9})?"
"""Seconds since 1970 as a plain decimal (bounded, so every match is a finite time)."""
FIRST = datetime(1, 1, 1, tzinfo=UTC).timestamp()
LAST = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC).timestamp()
"""Times are read within years 1 to 9999, those a datetime can show back."""
_DATE_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
                        r"(\.[0-9]+)?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))")
"""RFC 3339 `date-time`, the JSON Schema format: what the document's `format` promises."""


@dataclass(frozen=True, slots=True)
class TimeParam:
    """A point in time: an RFC 3339 date-time with its offset (`2026-11-28T10:00:00Z`) or
    epoch seconds (`1764324000.5`), as epoch seconds."""

    name: str
    required: bool = False

    def schema(self) -> dict[str, Any]:
        return {"anyOf": [{"type": "string", "format": "date-time"},
                          Text(EPOCH_SECONDS).schema(empty=True)],
                "description": "RFC 3339 date-time with its offset, or epoch seconds"}

    def read(self, request: Request) -> float | None:
        """Epoch seconds; a time beyond years 1 to 9999 is read as the nearest one there
        (no run was made before or after, so the runs selected are the same)."""
        raw = request.query_params.get(self.name)
        return read_time(raw, self.name) if raw else None


def read_time(raw: object, name: str, *, field: bool = False) -> float:
    """Epoch seconds of `raw`, an RFC 3339 date-time or epoch seconds (a JSON number too),
    within years 1 to 9999; BadRequest naming query parameter `name` (`field`: the body's
    field `name`) for anything else."""
    moment = None
    if isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw):
        moment = float(raw)
    elif isinstance(raw, str):
        moment = float(raw) if re.fullmatch(EPOCH_SECONDS, raw) else _date_time(raw)
    if moment is None:
        message = f"must be an RFC 3339 date-time or epoch seconds, got {raw!r}"
        hint = "like 2026-11-28T10:00:00Z, 2026-11-28T11:00:00+01:00 or 1764324000"
        if field:
            raise BadRequest(f"field '{name}' {message}", hint=hint, details={"field": name})
        raise _bad(name, message, hint)
    return min(max(moment, FIRST), LAST)


def _date_time(text: str) -> float | None:
    """Epoch seconds of an RFC 3339 date-time; None if it is not one (a 30 February)."""
    m = _DATE_TIME.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    sign, off_h, off_m = m[8], m[9], m[10]
    if second > 60 or (sign and (int(off_h) > 23 or int(off_m) > 59)):
        return None
    try:
        offset = timedelta(hours=int(off_h), minutes=int(off_m)) if sign else timedelta()
        zone = timezone(-offset if sign == "-" else offset)
        # a leap second (:60) is the first instant of the next minute
        moment = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=zone)
    except ValueError:
        return None
    fraction = float(m[7]) if m[7] else 0.0
    seconds = (moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
    return seconds + fraction + (1 if second == 60 else 0)


VERSION = Text(VERSION_PATTERN, max_length=MAX_LENGTH,
               description="MAJOR.MINOR.PATCH, with an optional prerelease (2.0.0-beta.1)",
               hint="like 1.2.3 or 2.0.0-beta.1")
"""A template version, as core/semver.py reads one (numbers kept to 15 digits)."""
VERSION_RANGE = Text(RANGE_PATTERN, min_length=1, max_length=MAX_LENGTH,
                     description="an exact version or an npm range: ^1.2, ~1.2.3, >=1.0 <2, "
                     "1.2.x, 1.0.0 - 2.0.0, ^1 || ^2",
                     hint="like ^1.2, ~1.2.3, >=1.0 <2, 1.0.0 - 2.0.0 or ^1 || ^2")
"""A version range, as core/semver.py reads one; tests/web/test_api_contract.py holds the
two together."""


def whole(pattern: re.Pattern[str]) -> str:
    """A `^...$` pattern of the core without its anchors, for `Text`."""
    return pattern.pattern.removeprefix("^").removesuffix("$")
