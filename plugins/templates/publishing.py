"""The publishing rules every template store applies: published versions are immutable, a
deleted version number is never reused, and a minor or patch version must keep the callers
of the versions before it in its line working (`schemacompat.py`); the line is the major
version, or `0.MINOR` before 1.0.0, the same versions a `^` range accepts. Also how stores
pick versions (exact, a range, the highest) and order and filter their lists."""
from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from typing import Any

from baseshift.core.semver import Range, Version, VersionError
from baseshift.core.templatestore import (
    Bump,
    TemplateDocument,
    TemplateError,
    TemplateExists,
    TemplateIncompatible,
)

from .schemacompat import breaking_changes


def retired_version(name: str, version: str) -> TemplateExists:
    """A deleted version cannot come back with other content: runs may have pinned it."""
    return TemplateExists(f"template {name}@{version} was published and deleted; a version "
                          "number is never reused", hint="publish it under a new version "
                          "(bump patch, minor or major)")


def line_of(v: Version) -> tuple[int, ...]:
    """Versions that must stay compatible: same major, or same 0.minor before 1.0.0."""
    return (v.major,) if v.major > 0 else (0, v.minor)


def next_version(existing: Iterable[Version], bump: Bump | str) -> Version:
    """The version after the highest of `existing`; the first version of a new template is
    1.0.0 for a major bump, 0.1.0 for minor and 0.0.1 for patch."""
    kind = Bump(bump)
    latest = max(existing, default=Version(0, 0, 0))
    if kind is Bump.MAJOR:
        return Version(latest.major + 1, 0, 0)
    if kind is Bump.MINOR:
        return Version(latest.major, latest.minor + 1, 0)
    return Version(latest.major, latest.minor, latest.patch + 1)


def parse_bump(value: Any) -> Bump:
    try:
        return Bump(value)
    except ValueError:
        raise TemplateError(("bump",), f"{value!r} is not one of major, minor, patch") from None


def check_publish(doc: TemplateDocument, existing: Sequence[TemplateDocument],
                  bump: Bump | str | None = None, now: float | None = None, *,
                  retired: Collection[str] = ()) -> TemplateDocument:
    """The document to store, given every stored version of its name and the version
    numbers of its deleted ones (`retired`).

    Sets the version from `bump` (when given) and `created_at`.

    Raises:
        TemplateError: neither a version nor a bump, or both.
        TemplateExists: that version is already published, or was and is deleted.
        TemplateIncompatible: with the reasons, when an earlier version of the same line
            has callers the new one would break.
    """
    if bump is not None:
        if doc.version:
            raise TemplateError(("version",), "give either a version or a bump, not both")
        doc = replace(doc, version=str(next_version((d.semver for d in existing), bump)))
    if not doc.version:
        raise TemplateError(("version",), "is missing", hint='give "version" or "bump"')
    new = doc.semver
    if any(d.semver == new for d in existing):
        raise TemplateExists(f"template {doc.ref} is already published; versions are immutable",
                             hint="publish a new version (bump minor or patch)")
    earlier = [d for d in existing if line_of(d.semver) == line_of(new) and d.semver < new]
    if earlier:
        previous = max(earlier, key=lambda d: d.semver)
        reasons = breaking_changes(previous.input_schema, previous.output_schema,
                                   doc.input_schema, doc.output_schema)
        if reasons:
            raise TemplateIncompatible(
                f"template {doc.ref} would break callers of {previous.ref}: "
                + "; ".join(reasons), reasons)
    if doc.version in retired:
        raise retired_version(doc.name, doc.version)
    return replace(doc, created_at=time.time() if now is None else now)


def select(docs: Iterable[TemplateDocument], version: str | None) -> TemplateDocument | None:
    """The version asked for: exact (`1.2.0`), a range (`^1.2`), or the highest (None)."""
    by_version = {d.semver: d for d in docs}
    if version is None:
        return by_version[max(by_version)] if by_version else None
    try:
        wanted = Range.parse(version)
    except VersionError as exc:
        raise TemplateError(("version",), exc.message, hint=exc.hint) from None
    best = wanted.best(by_version)
    return by_version[best] if best is not None else None


def sorted_docs(docs: Iterable[TemplateDocument]) -> list[TemplateDocument]:
    """By name, then version (oldest first): the order every `list` returns."""
    return sorted(docs, key=lambda d: (d.name, d.semver))


def matches(doc: TemplateDocument, name: str | None, type: str | None) -> bool:
    """`list` filters: exact name, and a step of the given executor type."""
    return (name is None or doc.name == name) and (type is None or type in doc.types)


def filter_versions(docs: Iterable[TemplateDocument], version: str | None
                    ) -> list[TemplateDocument]:
    """Documents whose version matches a range (or an exact version)."""
    if version is None:
        return list(docs)
    try:
        wanted = Range.parse(version)
    except VersionError as exc:
        raise TemplateError(("version",), exc.message, hint=exc.hint) from None
    return [d for d in docs if wanted.matches(d.semver)]
