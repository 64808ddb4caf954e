"""How `${...}` values reach a shell: each one as exactly the value, never as shell syntax.

An executor marks the config fields that are shell scripts in its config schema
(`"x-shell": "script"` on a string, `"x-shell": "argv"` on a list whose item after
`sh -c` / `bash -c` is a script). The compiler marks the `Interp` strings in those fields;
evaluating a marked string quotes each interpolated value for the place it stands in the
script, which only depends on the literal text before it:

- outside quotes, the value becomes one single-quoted word: `echo ${x}` -> `echo 'it'\\''s'`;
- inside single quotes, each `'` of the value becomes `'\\''`: `'${x}'` stays one string;
- inside double quotes, `\\ " $ \\`` of the value are escaped with a backslash;
- in a comment, newlines become spaces (the comment cannot end early).

Places where no quoting can be trusted (inside backticks, a `${VAR...}` expansion, a
here-document, a bash array `NAME=(...)`, after `$'...'`, in shell arithmetic `$((...))`,
in a command substitution `$(...)` (bash finds its end with a scan of its own), right after
a backslash) are refused:
`contexts` reports them so the checker can point at them, and rendering fails with the same
message. A value is one word: a command that evaluates its arguments as code (`eval`,
`sh -c`, bash's `[[ x -eq y ]]`) is the author's to avoid, as in any script. `raw(x)`
splices the text of x verbatim, wherever it stands. A NUL character cannot be part of a
command line: a value holding one fails the evaluation, naming the setting.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

BARE, SQ, DQ, COMMENT = "bare", "single", "double", "comment"
_WORD_BREAK = frozenset(" \t\n;&|()<>")
_DQ_SPECIAL = re.compile(r'([\\"$`])')


class Unquotable(ValueError):
    """An interpolation stands where its value cannot be quoted reliably."""


@dataclass(slots=True)
class _Scanner:
    """The quoting state of a POSIX shell script read so far (approximate, conservative)."""

    stack: list[str] = field(default_factory=lambda: [BARE])
    depth: list[int] = field(default_factory=lambda: [0])
    blocked: str | None = None  # why a value cannot be placed here, if it cannot
    escape: bool = False
    prev: str = "\n"
    heredoc: list[tuple[str, bool]] = field(default_factory=list)  # pending delimiters
    in_heredoc: tuple[str, bool] | None = None
    line: str = ""
    word: str = ""

    @property
    def state(self) -> str:
        return self.stack[-1]

    def feed(self, text: str) -> None:  # noqa: C901 - one branch per shell construct
        i = 0
        while i < len(text):
            c = text[i]
            nxt = text[i + 1] if i + 1 < len(text) else ""
            i += 1
            if self.in_heredoc is not None:
                if c == "\n":
                    delim, strip = self.in_heredoc
                    body = self.line.lstrip("\t") if strip else self.line
                    if body == delim:
                        self.in_heredoc = self.heredoc.pop(0) if self.heredoc else None
                    self.line = ""
                else:
                    self.line += c
                continue
            state = self.state
            if self.escape:
                self.escape = False
            elif state == SQ:
                if c == "'":
                    self._pop()
            elif state == "ansi":
                if c == "\\":
                    self.escape = True
                elif c == "'":
                    self._pop()
            elif state == "backtick":
                if c == "\\":
                    self.escape = True
                elif c == "`":
                    self._pop()
            elif state == COMMENT:
                if c == "\n":
                    self._pop()
                    i -= 1  # the newline still ends the command line
                    self.prev = " "
                    continue
            elif state == "arith":
                if c == "(":
                    self.depth[-1] += 1
                elif c == ")" and self.depth[-1] > 0:
                    self.depth[-1] -= 1
                elif c == ")" and nxt == ")":
                    self._pop()
                    i += 1
            elif state == "array":
                if c == "(":
                    self.depth[-1] += 1
                elif c == ")" and self.depth[-1] > 0:
                    self.depth[-1] -= 1
                elif c == ")":
                    self._pop()
            elif state == "bracket":
                if c == "]":
                    self._pop()
            elif state == "param":
                if c == "{":
                    self.depth[-1] += 1
                elif c == "}":
                    if self.depth[-1] == 0:
                        self._pop()
                    else:
                        self.depth[-1] -= 1
            elif state == DQ:
                if c == "\\":
                    self.escape = True
                elif c == '"':
                    self._pop()
                elif c == "`":
                    self._push("backtick")
                elif c == "$" and (opened := self._expansion(nxt, text[i + 1:i + 2])):
                    i, c = i + opened[0], opened[1]
            else:  # BARE
                if c in _WORD_BREAK:
                    self._word_ended()
                else:
                    self.word += c
                if c == "\\":
                    self.escape = True
                elif c == "$" and nxt == "'":
                    # bash reads $'...' with backslash escapes, dash as $ and '...': where
                    # it ends depends on the shell, so no later value can be placed safely
                    self.blocked = "after a $'...' string (shells read it differently)"
                    self._push("ansi")
                    i += 1
                elif c in "<>" and nxt == "(":
                    self._push(BARE)  # bash's process substitution <(...), read like $(...)
                    i += 1
                    c = "("
                    self.word = ""
                elif c == "'":
                    self._push(SQ)
                elif c == '"':
                    self._push(DQ)
                elif c == "`":
                    self._push("backtick")
                elif c == "#" and self.prev in _WORD_BREAK:
                    self._push(COMMENT)
                elif c == "$" and (opened := self._expansion(nxt, text[i + 1:i + 2])):
                    i, c = i + opened[0], opened[1]
                elif c == "(" and self.prev == "=":
                    self._push("array")  # bash's NAME=(...): its syntax errors do not stop it
                elif c == "(" and nxt == "(" and self.prev in _WORD_BREAK:
                    self._push("arith")  # bash's (( ... )) arithmetic command
                    i += 1
                elif c == "(":
                    self.depth[-1] += 1
                elif c == ")":
                    if self.depth[-1] == 0 and len(self.stack) > 1:
                        self._pop()
                    else:
                        self.depth[-1] = max(0, self.depth[-1] - 1)
                elif c == "<" and nxt == "<" and text[i + 1:i + 2] == "<":
                    i += 2  # a here-string: a plain word follows
                    c = "<"
                elif c == "<" and nxt == "<":
                    i = self._heredoc_word(text, i + 1)
                    c = "<"
                elif c == "\n" and self.heredoc:
                    self.in_heredoc = self.heredoc.pop(0)
                    self.line = ""
            self.prev = c

    def _expansion(self, nxt: str, after: str) -> tuple[int, str] | None:
        """Enter the expansion a `$` followed by `nxt` and `after` opens (`$((`, `$[`, `$(`,
        `${`), in double quotes as outside them: how many more characters it took, and the
        character to remember as the previous one. None for a `$` opening nothing."""
        if nxt == "(" and after == "(":
            self._push("arith")
            return 2, "$"
        if nxt == "[":
            self._push("bracket")
            return 1, "$"
        if nxt == "(":
            self._push(BARE)
            self.word = ""
            return 1, "("  # what follows starts a command: `#` there is a comment
        if nxt == "{":
            self._push("param")
            return 1, "$"
        return None

    def _word_ended(self) -> None:
        # `case ... in x) ...` inside $(...) has parentheses that do not pair up: the end of
        # the substitution can no longer be found without a real parser
        if self.word == "case" and len(self.stack) > 1:
            self.blocked = "after a case statement inside $(...)"
        self.word = ""

    def after_value(self) -> None:
        """A value was placed: the word goes on (a `#` after it does not start a comment)."""
        self.prev = "x"
        self.word += "x"

    def _heredoc_word(self, text: str, i: int) -> int:
        """Read the delimiter after `<<` (must be literal text, not a value)."""
        strip = i < len(text) and text[i] == "-"
        i += strip
        while i < len(text) and text[i] in " \t":
            i += 1
        m = re.match(r"""(?:'[^']*'|"[^"]*"|[^\s;&|()<>])+""", text[i:])
        word = m.group(0) if m else ""
        self.heredoc.append((word.replace("'", "").replace('"', "").replace("\\", ""), strip))
        return i + len(word)

    def _push(self, state: str) -> None:
        self.stack.append(state)
        self.depth.append(0)

    def _pop(self) -> None:
        if len(self.stack) > 1:
            self.stack.pop()
            self.depth.pop()

    def problem(self) -> str | None:
        """Why a value cannot be quoted at the current place, or None when it can."""
        if self.blocked is not None:
            return self.blocked
        if self.in_heredoc is not None:
            return "inside a here-document"
        if self.heredoc and self.heredoc[-1][0] == "":
            return "as a here-document's delimiter"
        if self.escape:
            return "right after a backslash"
        if self.state == "backtick":
            return "inside backticks (use $(...) instead)"
        if self.state == "param":
            return "inside a ${...} shell expansion"
        if self.state == "ansi":
            return "inside a $'...' string"
        if BARE in self.stack[1:]:
            # bash finds the end of $(...) with its own scan, which quoting can mislead
            return "inside $(...) (set a variable first: V=${...}; then use \"$V\" in it)"
        if self.state == "array":
            return "inside a bash array assignment NAME=(...)"
        if self.state in ("arith", "bracket"):
            return "inside shell arithmetic (its text is evaluated as code)"
        return None

    def place(self) -> str:
        """The quoting context here; "!" and the reason where no value can be placed."""
        problem = self.problem()
        return "!" + problem if problem else self.state


class ShellText:
    """A script built from literal text, quoted values and raw shell text, in order."""

    def __init__(self) -> None:
        self._scanner = _Scanner()
        self._out: list[str] = []

    def text(self, text: str) -> None:
        """Shell text as written (the script's own text, or what `raw()` gave)."""
        self._scanner.feed(text)
        self._out.append(text)

    def value(self, value: str) -> None:
        """A value, quoted for where it stands; Unquotable when it cannot be."""
        self._out.append(quote(value, self._scanner.place()))
        self._scanner.after_value()

    def result(self) -> str:
        return "".join(self._out)


def contexts(parts: tuple[str | object, ...]) -> list[str]:
    """For each non-text part, the quoting context it stands in (a context starting with
    "!" is a refusal, with the reason after it). A non-text part given as `(text,)` is raw
    shell text known in advance; other parts are read as values."""
    scanner = _Scanner()
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            scanner.feed(part)
            continue
        out.append(scanner.place())
        if isinstance(part, tuple) and len(part) == 1 and isinstance(part[0], str):
            scanner.feed(part[0])
        else:
            scanner.after_value()
    return out


def quote(value: str, context: str) -> str:
    """`value` as text that the shell reads back as exactly `value` in `context`."""
    if "\x00" in value:
        raise Unquotable("holds a NUL character, which no command line can carry")
    if context == SQ:
        return value.replace("'", "'\\''")
    if context == DQ:
        return _DQ_SPECIAL.sub(r"\\\1", value)
    if context == COMMENT:
        return value.replace("\n", " ")
    if context.startswith("!"):
        raise Unquotable(f"stands {context[1:]}, where its value cannot be quoted; move it "
                         "out, or write raw(...) to splice shell text on purpose")
    return "'" + value.replace("'", "'\\''") + "'"


SHELLS = frozenset({"sh", "bash", "dash", "ash", "ksh", "mksh", "zsh", "busybox"})


def script_index(argv: list[str | None]) -> int | None:
    """Where the script is in an argv (`None` for items that are not literal text):
    the item after the `-c` option of a shell, e.g. `["sh", "-c", SCRIPT, ...]`."""
    for i, item in enumerate(argv):
        if item is None:
            continue
        name = item.rsplit("/", 1)[-1]
        if name not in SHELLS:
            continue
        j = i + 1
        if name == "busybox" and j < len(argv) and argv[j] in SHELLS:
            j += 1
        while j < len(argv):
            opt = argv[j]
            if opt is None or not opt.startswith("-") or opt == "--":
                break
            if "c" in opt[1:] and not opt.startswith("--"):
                return j + 1 if j + 1 < len(argv) else None
            j += 1
        return None
    return None
