"""Semantic versions and the npm-style ranges `uses name@range` accepts (^1.2, >=1.0 <2, ...).

Ranges mean exactly what they mean to npm: node-semver (a port of npm's `semver`) reads
them, after `semver_syntax` has refused what npm refuses, with a message that says why.
tests/core/test_semver_npm.py checks both against npm's own package, run by node.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import nodesemver

from .semver_syntax import IDENTIFIER, MAX_LENGTH, MAX_NUMBER, VersionError, normalize

__all__ = ["Range", "Version", "VersionError"]

_VERSION = re.compile(
    rf"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-({IDENTIFIER}(?:\.{IDENTIFIER})*))?")
_EXPECTED = "expected MAJOR.MINOR.PATCH like 1.2.3"


@functools.total_ordering
@dataclass(frozen=True, slots=True)
class Version:
    """MAJOR.MINOR.PATCH with an optional prerelease, ordered as semver.org says: a
    prerelease comes before its release, and its numeric parts compare as numbers."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version:
        m = _VERSION.fullmatch(text.strip()) if len(text) <= MAX_LENGTH else None
        if not m:
            raise VersionError(f"'{text}' is not a version; {_EXPECTED}")
        numbers = (m[1], m[2], m[3])
        # len() first: int() refuses more than 4300 digits
        if any(len(n) > 16 or int(n) > MAX_NUMBER for n in numbers):
            raise VersionError(f"'{text}' has a number above {MAX_NUMBER}, the largest one "
                               "a version may hold")
        return cls(int(m[1]), int(m[2]), int(m[3]), tuple(m[4].split(".")) if m[4] else ())

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if pre else 1, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        pre = "-" + ".".join(self.prerelease) if self.prerelease else ""
        return f"{self.major}.{self.minor}.{self.patch}{pre}"


@dataclass(frozen=True, slots=True)
class Range:
    """An npm range: alternatives (`||`) of bounds that a version must all satisfy.

    As in npm, a prerelease matches only a range that names a prerelease of the same
    MAJOR.MINOR.PATCH: `^1.2.3-alpha` takes 1.2.3-beta, not 1.2.4-beta.
    """

    text: str
    _npm: Any = field(compare=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> Range:
        return cls(text, nodesemver.make_range(normalize(text), loose=False))

    def matches(self, v: Version) -> bool:
        return bool(self._npm.test(str(v)))

    def best(self, versions: Iterable[Version]) -> Version | None:
        """The highest version in `versions` that this range accepts."""
        return max((v for v in versions if self.matches(v)), default=None)

    def __str__(self) -> str:
        return self.text
