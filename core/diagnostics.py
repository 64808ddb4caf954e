"""Diagnostics: located problems in a workflow file, rendered like a compiler's errors."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple


class Span(NamedTuple):
    """A region of a source file; lines and columns start at 1, `end_col` is exclusive.

    A NamedTuple rather than a frozen dataclass: a large workflow creates one per token,
    and a tuple is several times cheaper to build."""

    line: int
    col: int
    end_line: int
    end_col: int

    @classmethod
    def point(cls, line: int, col: int, width: int = 1) -> Span:
        return cls(line, col, line, col + max(width, 1))


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in a workflow file, with where it is and what to do about it."""

    path: str
    span: Span
    code: str
    message: str
    hint: str | None = None
    severity: Severity = Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.span.line, self.span.col, self.code)

    def to_json(self) -> dict[str, object]:
        """The diagnostic for machines; message and hint escaped as in `render`."""
        return {
            "path": self.path,
            "line": self.span.line,
            "col": self.span.col,
            "end_line": self.span.end_line,
            "end_col": self.span.end_col,
            "severity": self.severity.value,
            "code": self.code,
            "message": printable(self.message),
            "hint": None if self.hint is None else printable(self.hint),
        }


def render(diagnostic: Diagnostic, source: str | None) -> str:
    """Render `path:line:col: error[code]: message`, the source line, a caret line and the hint.

    Every part that comes from the file is passed through `printable`: a file is data, and
    its escape sequences must not reach the terminal that shows the message."""
    d, s = diagnostic, diagnostic.span
    head = f"{d.path}:{s.line}:{s.col}: {d.severity.value}[{d.code}]: {d.message}"
    lines = [printable(head)]
    text = _source_line(source, s.line)
    if text is not None:
        gutter = f"{s.line:>5} | "
        end = s.end_col if s.end_line == s.line else len(text) + 1
        before = printable(text[: s.col - 1])
        width = len(printable(text[s.col - 1: max(end, s.col + 1) - 1]))
        lines.append(gutter + printable(text))
        lines.append(" " * (len(gutter) - 2) + "| " + " " * len(before) + "^" * max(width, 1))
    if d.hint:
        lines.append(f"   hint: {printable(d.hint)}")
    return "\n".join(lines)


def printable(text: str) -> str:
    """`text` with every character a terminal would not show as itself written as an escape:
    `\\x1b` for control characters, `\\u{FEFF}` for invisible and formatting ones (a
    byte-order mark, a no-break space, a bidi override). Only the plain space stays as it
    is; `render` has already turned the tabs of source lines into spaces."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0xA0 else f"\\u{{{code:04X}}}"


def render_all(diagnostics: list[Diagnostic], sources: dict[str, str]) -> str:
    """Render every diagnostic in file order, followed by a one-line count."""
    ordered = sorted(diagnostics, key=Diagnostic.sort_key)
    blocks = [render(d, sources.get(d.path)) for d in ordered]
    errors = sum(d.severity is Severity.ERROR for d in ordered)
    blocks.append(f"{errors} error{'s' if errors != 1 else ''} found")
    return "\n".join(blocks)


def _source_line(source: str | None, line: int) -> str | None:
    if source is None:
        return None
    lines = source.split("\n")  # not splitlines(): the parsers count only '\n' as a line end
    if 1 <= line <= len(lines):
        return lines[line - 1].expandtabs(1).rstrip("\r")
    return None


def article(noun: str) -> str:
    """`noun` with its indefinite article, for messages ("an integer", "a string")."""
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"
