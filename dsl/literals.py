"""Token conversions shared by both parsers: strings (with `${...}`), numbers, durations.

`fastparse` and the lark transformer (`transformer`) build nodes through these helpers, so a
file means the same thing whichever of them read it. No lark here: files without syntax
errors are read without importing it.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from baseshift.core.diagnostics import Span
from baseshift.core.expr import (
    Attr,
    Expr,
    Interp,
    Literal,
    Name,
)

_PIECE = re.compile(
    r'\\u(?P<hex>[0-9a-fA-F]{4})|\\(?P<esc>[^\n])'
    r'|\$\{(?P<expr>(?:[^}"\n]|"(?:[^"\\\n]|\\[^\n])*")*)\}|(?P<text>[^\\$]+|\$)'
)
_INTERP = re.compile(r'\$\{((?:[^}"\n]|"(?:[^"\\\n]|\\[^\n])*")*)\}')
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$", "/": "/"}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([A-Za-z]+)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

InnerParser = Callable[[str, int, int], Expr]
"""Parses the text inside `${...}` found at (line, columns right of col 1) in the file."""


def number_value(text: str) -> int | float:
    """The value of a NUMBER token: an int unless it has a fraction or an exponent.

    Integers too long for `int()` (over 4300 digits) read as float infinity, which the
    checks then refuse where a whole number is needed, instead of raising.
    """
    if any(c in text for c in ".eE") or len(text) > 4000:
        return float(text)
    return int(text)


def parse_duration(text: str) -> float:
    """Seconds in `500ms`, `5s`, `1m30s`, `2h`, `1d`; ValueError names a bad unit."""
    seconds = 0.0
    for amount, unit in _DURATION_PART.findall(text):
        if unit not in _UNITS:
            raise ValueError(f"unknown unit '{unit}' in duration '{text}'; use ms, s, m, h or d")
        seconds += float(amount) * _UNITS[unit]
    return seconds


def decode_text(raw: str) -> str:
    """A string token's text without quotes and escapes; `${` is kept as written."""
    return "".join(_decoded(m) or m.group() for m in _PIECE.finditer(raw, 1, len(raw) - 1))


def _decoded(m: re.Match[str]) -> str | None:
    if m["hex"]:
        return chr(int(m["hex"], 16))
    if m["esc"] is not None:
        return _ESCAPES.get(m["esc"], "\\" + m["esc"])
    return m["text"]


def string_expr(raw: str, span: Span, inner: InnerParser) -> Expr:
    """A string token as a Literal, or an Interp when it holds `${...}` parts."""
    if "\\" not in raw:
        if "${" not in raw:
            return Literal(raw[1:-1], span)
        return _interpolated(raw, span, inner)
    parts: list[str | Expr] = []
    for m in _PIECE.finditer(raw, 1, len(raw) - 1):
        if m["expr"] is None:
            text = _decoded(m) or ""
            if parts and isinstance(parts[-1], str):
                parts[-1] += text
            else:
                parts.append(text)
        else:
            parts.append(inner(m["expr"], span.line, span.col + m.start("expr") - 1))
    if not any(not isinstance(p, str) for p in parts):
        return Literal("".join(p for p in parts if isinstance(p, str)), span)
    return Interp(tuple(p for p in parts if p != ""), span)


def _interpolated(raw: str, span: Span, inner: InnerParser) -> Expr:
    """string_expr for strings without escapes (the common case, done with fewer matches)."""
    parts: list[str | Expr] = []
    end = 1
    for m in _INTERP.finditer(raw, 1, len(raw) - 1):
        if m.start() > end:
            parts.append(raw[end:m.start()])
        parts.append(inner(m[1], span.line, span.col + m.start(1) - 1))
        end = m.end()
    if end < len(raw) - 1:
        parts.append(raw[end:-1])
    return Interp(tuple(parts), span)


def shift(e: Expr, line: int, cols: int) -> Expr:
    """Move an expression parsed on its own (from line 1) to `line`, `cols` columns right."""
    s = e.span
    span = Span(line + s.line - 1, s.col + cols, line + s.end_line - 1, s.end_col + cols)
    changes: dict[str, Any] = {"span": span}
    for f in dataclasses.fields(e):
        value = getattr(e, f.name)
        if f.name != "span":
            changes[f.name] = _shift_value(value, line, cols)
    return dataclasses.replace(e, **changes)


def _shift_value(value: Any, line: int, cols: int) -> Any:
    if isinstance(value, tuple):
        return tuple(_shift_value(v, line, cols) for v in value)
    if dataclasses.is_dataclass(value) and hasattr(value, "span"):
        return shift(value, line, cols)  # type: ignore[arg-type]
    return value


def key_path(names: list[tuple[str, Span]]) -> Expr:
    """`input.customer` as written after `per`: a Name, then one Attr per further name."""
    (first, start), *rest = names
    e: Expr = Name(first, start)
    for name, span in rest:
        e = Attr(e, name, Span(start.line, start.col, span.end_line, span.end_col))
    return e
