"""Server-side highlighting of workflow source: keywords, strings, `${...}`, comments.

A small tokenizer over one line at a time (a string never spans lines in the language);
every piece of text is escaped, only the `<span class="tok-...">` wrappers are markup.
"""
from __future__ import annotations

import re

from markupsafe import Markup, escape

KEYWORDS = frozenset("""
    workflow version description input job uses needs when with retry backoff factor
    exponential fixed max jitter timeout priority for in on failure output template
    concurrency schedule and or not true false null
""".split())

_TOKEN = re.compile(r"""
    (?P<comment>\#.*)
  | (?P<string>"(?:[^"\\$]|\\.|\$(?!\{)|\$\{(?:[^}"]|"(?:[^"\\]|\\.)*")*\}?)*"?)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?:[A-Za-z]+|%)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<other>.)
""", re.VERBOSE)
_INTERPOLATION = re.compile(r'\$\{(?:[^}"]|"(?:[^"\\]|\\.)*")*\}?')


def highlight_line(line: str) -> Markup:
    """One line of source as escaped HTML with token spans."""
    out = []
    for match in _TOKEN.finditer(line):
        kind, text = match.lastgroup, match.group()
        if kind == "string":
            out.append(_span("string", _string(text)))
        elif kind == "name" and text in KEYWORDS:
            out.append(_span("keyword", escape(text)))
        elif kind in ("comment", "number"):
            out.append(_span(str(kind), escape(text)))
        else:
            out.append(escape(text))
    return Markup("").join(out)


def highlight(source: str) -> list[Markup]:
    """Every line of `source`, highlighted (line n of the file is item n - 1)."""
    return [highlight_line(line) for line in source.splitlines()]


def _string(text: str) -> Markup:
    parts = []
    last = 0
    for match in _INTERPOLATION.finditer(text):
        parts.append(escape(text[last:match.start()]))
        parts.append(_span("interp", escape(match.group())))
        last = match.end()
    parts.append(escape(text[last:]))
    return Markup("").join(parts)


def _span(kind: str, inner: Markup) -> Markup:
    return Markup('<span class="tok-{}">{}</span>').format(kind, inner)
