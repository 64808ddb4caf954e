"""Masking secrets in what a job leaves behind: its log, its output and its error.

A step may print a secret it was given, encode it first (base64, URL-encoding, a JSON
string), or build a value from it (`${upper(secret.TOKEN)}`). Before an attempt's outcome is
stored, sent to a server or shown anywhere, every resolved secret value of the attempt, in
each of those encodings, and every configuration value built from a secret is replaced by
`***`, as GitHub Actions does. The secret values themselves never leave the attempt.
"""
from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from .expr import Expr, ObjectExpr, references

MASK = "***"
MIN_LENGTH = 3
"""Shorter values are not masked: replacing every `1` or `ab` would garble any log, and so
short a secret protects nothing anyway (docs/security.md says so)."""


def encodings(value: str) -> set[str]:
    """`value` as a step may print it: as is, base64 (standard and URL-safe, with and
    without padding), URL-encoded and as the inside of a JSON string."""
    raw = value.encode("utf-8", "surrogatepass")
    found = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1],
             json.dumps(value, ensure_ascii=False)[1:-1]}
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode("ascii")
        found |= {text, text.rstrip("=")}
    return {f for f in found if len(f) >= MIN_LENGTH}


class Masker:
    """The secrets of one attempt, and what masks them in text and JSON values."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*values)

    def add(self, *values: str) -> None:
        """Mask these values (and their encodings) too; short and empty ones are skipped."""
        for value in values:
            if isinstance(value, str) and len(value) >= MIN_LENGTH:
                self._forms |= encodings(value)
                self._pattern = None

    def add_derived(self, value: Any) -> None:
        """Mask every string inside `value`: something built from a secret."""
        if isinstance(value, str):
            self.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                self.add_derived(item)
        elif isinstance(value, list):
            for item in value:
                self.add_derived(item)

    def __bool__(self) -> bool:
        return bool(self._forms)

    def text(self, text: str) -> str:
        """`text` with every secret form replaced by `***` (longest forms first, so a
        secret's base64 is not left half-masked by a shorter one)."""
        if not self._forms or not text:
            return text
        if self._pattern is None:
            ordered = sorted(self._forms, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered)))
        return self._pattern.sub(MASK, text)

    def value(self, value: Any) -> Any:
        """A JSON value with every string (object keys too) masked."""
        if not self._forms:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value


def secret_fields(expr: Expr, value: Any,
                  reads: Callable[[Expr], bool] | None = None) -> Any:
    """What of `value` (the evaluation of `expr`, a job's or step's `with` block) is built
    from a secret: the fields whose expressions read `secret.*` (or whatever `reads` says
    is secret: secret inputs and outputs too; the whole value when `expr` is no object).
    None when nothing is."""
    reads = reads or _reads_secret
    if isinstance(expr, ObjectExpr) and isinstance(value, dict):
        return [value.get(key) for key, field in expr.fields if reads(field)]
    return value if reads(expr) else None


def _reads_secret(expr: Expr) -> bool:
    return any(root == "secret" for root, _, _ in references(expr))
