"""Semantic versions and the ranges `uses name@range` accepts (^1.2, ~1.2.3, >=1 <2, 1.2.3, *)."""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_VERSION = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_PARTIAL = re.compile(r"^(0|[1-9]\d*)(?:\.(0|[1-9]\d*|[xX*]))?(?:\.(0|[1-9]\d*|[xX*]))?$")
_COMPARATOR = re.compile(r"^(>=|<=|>|<|=|\^|~)?\s*(.+)$")


class VersionError(ValueError):
    """A malformed version or range; the message says what form is expected."""


@dataclass(frozen=True, slots=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> Version:
        m = _VERSION.match(text.strip())
        if not m or len(text) > 64:
            raise VersionError(f"'{text}' is not a version; expected MAJOR.MINOR.PATCH like 1.2.3")
        return cls(int(m[1]), int(m[2]), int(m[3]))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True, slots=True)
class Range:
    """A conjunction of comparators; a version matches when it satisfies every one."""

    text: str
    bounds: tuple[tuple[str, Version], ...]

    @classmethod
    def parse(cls, text: str) -> Range:
        parts = text.replace(",", " ").split()
        if not parts:
            raise VersionError("empty version range; expected e.g. ^1.2, ~1.2.3, >=1.0 <2 or 1.2.3")
        bounds: list[tuple[str, Version]] = []
        for part in parts:
            bounds.extend(_comparator(part))
        return cls(text, tuple(bounds))

    def matches(self, v: Version) -> bool:
        return all(_OPS[op](v, bound) for op, bound in self.bounds)

    def best(self, versions: Iterable[Version]) -> Version | None:
        """The highest version in `versions` that this range accepts."""
        return max((v for v in versions if self.matches(v)), default=None)

    def __str__(self) -> str:
        return self.text


_OPS = {
    ">=": lambda a, b: a >= b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b, "=": lambda a, b: a == b,
}


def _comparator(part: str) -> list[tuple[str, Version]]:
    if part in ("*", "x", "X"):
        return [(">=", Version(0, 0, 0))]
    m = _COMPARATOR.match(part)
    assert m is not None  # the pattern accepts any non-empty text
    op, rest = m[1] or "", m[2]
    pm = _PARTIAL.match(rest)
    if not pm or len(rest) > 64:
        raise VersionError(f"'{part}' is not a version range; "
                           "expected e.g. ^1.2, ~1.2.3, >=1.0 <2 or 1.2.3")
    nums = [int(g) if g and g not in "xX*" else None for g in pm.groups()]
    major, minor, patch = nums
    low = Version(major or 0, minor or 0, patch or 0)
    assert major is not None
    if op in ("", "="):
        if minor is None:
            return [(">=", low), ("<", Version(major + 1, 0, 0))]
        if patch is None:
            return [(">=", low), ("<", Version(major, minor + 1, 0))]
        return [("=", low)]
    if op == "^":
        if major > 0 or minor is None:
            return [(">=", low), ("<", Version(major + 1, 0, 0))]
        if minor > 0 or patch is None:
            return [(">=", low), ("<", Version(0, minor + 1, 0))]
        return [("=", low)]
    if op == "~":
        if minor is None:
            return [(">=", low), ("<", Version(major + 1, 0, 0))]
        return [(">=", low), ("<", Version(major, minor + 1, 0))]
    return [(op, low)]
