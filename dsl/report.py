"""Collecting diagnostics while checking a file, and the small helpers messages share."""
from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from baseshift.core.diagnostics import Diagnostic, Severity, Span
from baseshift.core.expr import Expr

from .ast import Damage

_KEY_BEFORE = re.compile(r'([A-Za-z_][A-Za-z0-9_]*|"(?:[^"\\]|\\.)*")[ \t]*:[ \t]*$')


@dataclass(slots=True)
class Reporter:
    """The diagnostics of one file, in the order found."""

    path: str
    source: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    damage: Damage = Damage()
    """What the file's syntax errors spoil: problems found there are not the author's."""
    _lines: list[str] | None = None

    def error(self, span: Span, code: str, message: str, hint: str | None = None) -> None:
        d = Diagnostic(self.path, span, code, message, hint)
        if not self.damage.spoils(d):
            self.diagnostics.append(d)

    @property
    def errors(self) -> int:
        """How many errors (not warnings) were reported so far."""
        return sum(d.severity is Severity.ERROR for d in self.diagnostics)

    def warning(self, span: Span, code: str, message: str, hint: str | None = None) -> None:
        """A problem that does not stop the file from running (`baseshift check` shows it)."""
        d = Diagnostic(self.path, span, code, message, hint, Severity.WARNING)
        if not self.damage.spoils(d):
            self.diagnostics.append(d)

    def key_span(self, value: Expr) -> Span:
        """Where the key of an object field is, given its value (keys keep no span)."""
        if self._lines is None:
            self._lines = self.source.split("\n")  # the parsers' lines: '\n' ends one
        s = value.span
        line = self._lines[s.line - 1] if 0 < s.line <= len(self._lines) else ""
        m = _KEY_BEFORE.search(line[: s.col - 1])
        if m is None:
            return s
        return Span(s.line, m.start(1) + 1, s.line, m.end(1) + 1)


def closest(name: str, choices: Iterable[str]) -> str | None:
    """`did you mean 'x'?` for the choice closest to a misspelt `name`, if one is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6) if name else []
    return f"did you mean '{close[0]}'?" if close else None


def did_you_mean(name: str, choices: Iterable[str], kind: str) -> str | None:
    """`did you mean 'x'?`, else the list of what exists, else None."""
    options = sorted(set(choices))
    suggestion = closest(name, options)
    if suggestion:
        return suggestion
    if not options:
        return None
    shown = ", ".join(options[:12]) + (", ..." if len(options) > 12 else "")
    return f"{kind}: {shown}"
