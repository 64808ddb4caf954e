"""The version range syntax we accept, checked before node-semver reads a range.

The library (a port of npm's `semver`) gives npm's answers for every range npm accepts, but
also accepts text npm refuses (`1.x.3`, `>=x.1`) and reads it in its own way. Checking the
syntax here keeps the two in step (tests/core/test_semver_npm.py proves it against npm) and
says what is wrong in words, where the library raises or silently guesses.
"""
from __future__ import annotations

import re

MAX_LENGTH = 256
"""npm's limit on a version or range, in characters."""
MAX_NUMBER = 2**53 - 1
"""npm's limit on a version number (JavaScript's largest exact integer)."""
EXAMPLES = "valid ranges look like ^1.2, ~1.2.3, >=1.0 <2, 1.2.x, 1.0.0 - 2.0.0 or ^1 || ^2"

_NR = r"(?:0|[1-9]\d*)"
_WILD = r"[xX*]"
IDENTIFIER = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
"""One dot-separated identifier of a prerelease (SemVer 2.0.0 section 9)."""
_QUALIFIER = rf"(?:-{IDENTIFIER}(?:\.{IDENTIFIER})*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
# A wildcard is only followed by wildcards, and a prerelease or build only follows three
# numbers: npm refuses `1.x.3` as a bound and ignores the 3 after ~ or ^ (so would we).
_PARTIAL = (rf"(?:v?{_NR}\.{_NR}\.{_NR}{_QUALIFIER}|v?{_NR}\.{_NR}(?:\.{_WILD})?"
            rf"|v?{_NR}(?:\.{_WILD}){{0,2}}|{_WILD}(?:\.{_WILD}){{0,2}})")
_COMPARATOR = re.compile(rf"(?:<=|>=|<|>|=|~>|~|\^)?{_PARTIAL}")
_HYPHEN = re.compile(rf"({_PARTIAL}) - ({_PARTIAL})")
_AFTER_OPERATOR = re.compile(r"(<=|>=|~>|[<>=~^])\s+")
_QUALIFIERS = re.compile(r"[-+].*")


# The same grammar as one regular expression, for documents (an OpenAPI pattern, which must
# be the same in JavaScript): separators are spaces and commas only, and numbers have at
# most 15 digits (all below MAX_NUMBER), so every text it admits `normalize` accepts too.
_DOC_NR = r"(?:0|[1-9][0-9]{0,14})"
_DOC_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_DOC_PRERELEASE = rf"-{_DOC_ID}(?:\.{_DOC_ID})*"
_DOC_QUALIFIER = rf"(?:{_DOC_PRERELEASE})?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
_DOC_PARTIAL = (rf"(?:v?{_DOC_NR}\.{_DOC_NR}\.{_DOC_NR}{_DOC_QUALIFIER}"
                rf"|v?{_DOC_NR}\.{_DOC_NR}(?:\.{_WILD})?|v?{_DOC_NR}(?:\.{_WILD}){{0,2}}"
                rf"|{_WILD}(?:\.{_WILD}){{0,2}})")
_DOC_COMPARATOR = rf"(?:(?:<=|>=|<|>|=|~>|~|\^) *)?{_DOC_PARTIAL}"
_DOC_ALTERNATIVE = (rf"[ ,]*(?:{_DOC_PARTIAL}[ ,]+-[ ,]+{_DOC_PARTIAL}"
                    rf"|{_DOC_COMPARATOR}(?:[ ,]+{_DOC_COMPARATOR})*)[ ,]*")
RANGE_PATTERN = rf"{_DOC_ALTERNATIVE}(?:\|\|{_DOC_ALTERNATIVE})*"
"""A version range (unanchored), as a regular expression admitting a subset of what
`normalize` accepts: for an API document."""
VERSION_PATTERN = rf"{_DOC_NR}\.{_DOC_NR}\.{_DOC_NR}(?:{_DOC_PRERELEASE})?"
"""A published version (MAJOR.MINOR.PATCH and an optional prerelease), unanchored."""


class VersionError(ValueError):
    """A malformed version or range: `message` says what is wrong, `hint` (for a range)
    shows valid ones; str() gives both, for callers with no place for a hint."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(f"{message}; {hint}" if hint else message)
        self.message = message
        self.hint = hint


_REASONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(?:<=|>=|~>|[<>=~^])+$"), "an operator needs a version after it"),
    (re.compile(r"[xX*]\.\d"), "a number cannot follow a wildcard (x, X or *)"),
    (re.compile(r"(?<![\dA-Za-z])0\d"), "numbers have no leading zeros"),
    (re.compile(r"\d\.\d+\.\d+\.\d"), "a version has three numbers, MAJOR.MINOR.PATCH"),
    (re.compile(r"[-+]"), "a prerelease (-beta.1) or build (+b5) follows three numbers"),
    (re.compile(r"^(?>(?:<=|>=|~>|[<>=~^]))[<>=~^]"),  # atomic: >= is one operator, not > =
     "one operator per bound: <, <=, >, >=, =, ~ or ^"),
)
"""Why a comparator is refused, the first that applies; checked only once it is refused."""


def normalize(text: str) -> str:
    """The range as npm reads it: commas are spaces (so that a range needs no quotes in a
    workflow: `uses t@>=1.0,<2`), whitespace collapsed, no space after an operator.

    Raises:
        VersionError: when the text is not a range we read the way npm does.
    """
    if len(text) > MAX_LENGTH:
        raise VersionError(f"version range is longer than {MAX_LENGTH} characters")
    alternatives = [_AFTER_OPERATOR.sub(r"\1", " ".join(a.replace(",", " ").split()))
                    for a in text.split("||")]
    if alternatives == [""]:
        raise VersionError("empty version range", EXAMPLES)
    if "" in alternatives:
        raise VersionError(f"'{text}' has an empty side of '||' (npm reads it as any version)",
                           f"write * for any version; {EXAMPLES}")
    for alternative in alternatives:
        _check_alternative(alternative, text)
    return " || ".join(alternatives)


def _check_alternative(alternative: str, whole: str) -> None:
    if not _HYPHEN.fullmatch(alternative):
        parts = alternative.split(" ")
        bad = next((p for p in parts if not _COMPARATOR.fullmatch(p)), None)
        if bad is not None:
            raise _refused(bad, whole)
    _check_numbers(alternative, whole)


def _check_numbers(alternative: str, whole: str) -> None:
    # MAJOR, MINOR and PATCH only: npm has no limit on the numbers of a prerelease or build
    numbers = [n for part in alternative.split(" ")
               for n in _QUALIFIERS.sub("", part.lstrip("<>=~^v")).split(".") if n.isdigit()]
    # len() first: int() refuses more than 4300 digits. Below MAX_NUMBER, not up to it: npm
    # reads ^N, ~N, N.x, >N.x and LOW - N as bounds at N + 1, over its limit.
    if any(len(n) > 16 or int(n) >= MAX_NUMBER for n in numbers):
        raise VersionError(f"'{whole}' has a number above {MAX_NUMBER - 1}, the largest one a "
                           "range may hold")


def _refused(part: str, whole: str) -> VersionError:
    if part == "-":
        return VersionError(f"'{whole}' is not a version range: a hyphen range is LOW - HIGH "
                            "alone between '||' (1.0.0 - 2.0.0 || >=3)", EXAMPLES)
    why = next((reason for pattern, reason in _REASONS if pattern.search(part)), None)
    where = f"'{part}'" if part == whole else f"'{part}' in '{whole}'"
    return VersionError(f"{where} is not a version range{': ' + why if why else ''}", EXAMPLES)
