"""Syntax error recovery for the lark parser: after each error, the repair that reads furthest.

After an unexpected token the parser can go on in a few ways: insert a missing closer,
comma or colon before it, stand in for a missing value, or drop it. Each is tried on a
copy of the parser against the next few tokens of the file, and the one that reads most of
them wins (earlier repairs win ties). Judging by what follows keeps one mistake to one
error: inserting a keyword because the parser state allows one (`retries 3` read as
`for retries in 3`) used to turn a typo into an error on every following line.
"""
from __future__ import annotations

import re
from copy import copy
from dataclasses import dataclass
from typing import Any, NamedTuple

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lexer import LexerState

from . import fastparse

LOOKAHEAD = 4
"""How many tokens after the error a repair is judged on."""
RESYNC = 3
"""A repair that reads this many tokens has found the parser's place again (yacc's rule)."""

CLOSERS = {"RBRACE": "}", "RSQB": "]", "RPAR": ")"}
_PUNCTUATION = ("RBRACE", "RSQB", "RPAR", "COMMA", "COLON", "LBRACE")
STAND_INS = {"DURATION": "1s", "NUMBER": "0", "STRING": '""', "NAME": "_", "RANGE": "*",
             "LABEL": "label"}


@dataclass(frozen=True, slots=True)
class Repair:
    """Tokens to feed in place of the unexpected one (which they may include), and whether
    to drop the block that the unexpected opener starts."""

    tokens: tuple[Token, ...]
    drops_block: bool = False
    invents_keyword: bool = False
    relexes: bool = False
    """Read the unexpected token again after `tokens`: a keyword there may be a name now."""


@dataclass(frozen=True, slots=True)
class Rewind:
    """A statement word the parser took for a name, where a name could stand (`needs a,`
    then `with` on the next line; `input { a: string` then `job b ...`): the parser as it was
    before that word (and before the comma just ahead of it), and the word as a keyword."""

    parser: Any
    keyword: Token
    comma: Token | None


def rewind(parser: Any, literal: dict[str, str]) -> Rewind | None:
    """Undo the last name the parser read when it is a statement word; None otherwise.

    The error comes one token later than the mistake there, so both the message and the
    repair are about that word (and the comma before it, if any)."""
    values = parser.parser_state.value_stack
    if not values or not isinstance(values[-1], Token) or values[-1].type != "NAME":
        return None
    kind = _KEYWORD_TYPES.get(str(values[-1]))
    if kind is None or kind not in literal:
        return None
    trial = parser.copy(deepcopy_values=False)
    stack = trial.parser_state
    stack.state_stack.pop()
    word = stack.value_stack.pop()
    comma = None
    if stack.value_stack and isinstance(stack.value_stack[-1], Token) \
            and stack.value_stack[-1].type == "COMMA":
        stack.state_stack.pop()
        comma = stack.value_stack.pop()
    return Rewind(trial, Token.new_borrow_pos(kind, str(word), word), comma)


class Outcome(NamedTuple):
    """What a repair did: how many of the following tokens it read (LOOKAHEAD + 1 for all of
    them, -1 when the parse cannot go on), and how many openers and closers it inserted."""

    read: int
    opened: int = 0
    closed: int = 0


def repair(e: UnexpectedToken, literal: dict[str, str]) -> Outcome:
    """Repair the parse after `e` so that it can go on.

    `literal` maps terminal names to their text, for the tokens a repair inserts."""
    parser = e.interactive_parser
    accepts = e.accepts or set()
    if e.token.type == "$END":
        closer = next((t for t in CLOSERS if t in accepts), None)
        if closer is None:
            return Outcome(-1)
        parser.feed_token(Token.new_borrow_pos(closer, CLOSERS[closer], e.token))
        return Outcome(LOOKAHEAD + 1, closed=1)
    if e.token.type == "RANGE" and len(e.token) > 1:
        # Stray text (`&&`, `'x'`, an invisible character glued to a keyword): drop its
        # first character only, so that what follows is read as what it is.
        _resume_at(lexer_state(parser), e.token, 1)
        return Outcome(0)
    scored = [(_progress(parser, r, e.token), parser, r)
              for r in _options(e.token, accepts, literal)]
    back = rewind(parser, literal)
    if back is not None:
        again = back.parser.accepts()
        scored[:0] = [(_progress(back.parser, r, e.token), back.parser, r)
                      for r in _reread(back.keyword, again, literal)]
    score, base, best = max((c for c in scored if c[0] > LOOKAHEAD or not c[2].invents_keyword),
                            key=lambda c: c[0])
    if base is not parser:
        parser.parser_state = base.parser_state
    for token in best.tokens:
        parser.feed_token(token)
    if best.relexes:
        _resume_at(lexer_state(parser), e.token, 0)
    if best.drops_block:
        _drop_block(lexer_state(parser))
    inserted = [t.type for t in best.tokens if t is not e.token]
    return Outcome(score, sum(t in _OPENERS for t in inserted), sum(t in CLOSERS for t in inserted))


def skip_string(e: UnexpectedCharacters) -> None:
    """After a string the lexer refused: read it as a string that ends at the last '"' of
    its line (or at the line's end), which is what its author most likely meant."""
    state = lexer_state(e.interactive_parser)
    text = state.text.text
    assert isinstance(text, str)
    start = state.line_ctr.char_pos
    if not text.startswith('"', start):
        return
    line_end = text.find("\n", start)
    line_end = len(text) if line_end < 0 else line_end
    last = text.rfind('"', start + 1, line_end)
    # With no other quote, the closers at the line's end are most likely the statement's
    # (`with { command: "echo }`), not the string's.
    end = last + 1 if last > start else start + len(text[start:line_end].rstrip(" \t\r}]),"))
    stand_in = Token("STRING", '""', start, e.line, e.column, e.line, e.column + 2, start + 2)
    trial = _dry_run(e.interactive_parser)
    try:
        trial.feed_token(stand_in)
    except UnexpectedInput:
        return
    e.interactive_parser.feed_token(stand_in)
    state.line_ctr.feed(text[start:end], test_newline=False)


def _options(token: Token, accepts: set[str], literal: dict[str, str]) -> list[Repair]:
    """The repairs worth trying, in order of preference."""
    options: list[Repair] = []
    label = _as_label(token)
    if label is not None and "COMMA" in accepts:
        options.append(Repair((_stand_in("COMMA", label, literal), label)))
    inserted = [k for k in _PUNCTUATION if k in accepts] + [k for k in STAND_INS if k in accepts]
    options += [Repair((_stand_in(kind, token, literal), token)) for kind in inserted]
    keywords = sorted(k for k in accepts if k not in inserted and k in literal)
    options += [Repair((_stand_in(k, token, literal), token), invents_keyword=True)
                for k in keywords]
    options.append(Repair((), drops_block=token.type in _OPENERS))
    options += [Repair((_stand_in(kind, token, literal),)) for kind in STAND_INS if kind in accepts]
    return options


def _reread(keyword: Token, accepts: set[str], literal: dict[str, str]) -> list[Repair]:
    """Repairs after a rewind: the word as a keyword, after a closer or a stand-in value."""
    options = [Repair((keyword,), relexes=True)]
    for kind in [k for k in (*_PUNCTUATION, *STAND_INS) if k in accepts]:
        options.append(Repair((_stand_in(kind, keyword, literal), keyword), relexes=True))
    return options


def _progress(parser: Any, r: Repair, unexpected: Token) -> int:
    """How many of the file's tokens a repair reads: the unexpected one if it keeps it,
    then up to LOOKAHEAD more; -1 when the repair itself does not fit."""
    trial = _dry_run(parser)
    try:
        for token in r.tokens:
            trial.feed_token(token)
    except UnexpectedInput:
        return -1
    if r.relexes:
        _resume_at(lexer_state(trial), unexpected, 0)
    if r.drops_block:
        _drop_block(lexer_state(trial))
    read = int(any(t is unexpected for t in r.tokens))
    try:
        for token in trial.lexer_thread.lex(trial.parser_state):
            trial.feed_token(token)
            read += 1
            if read > LOOKAHEAD:
                return read
        trial.feed_eof(unexpected)
    except UnexpectedInput:
        return read
    return LOOKAHEAD + 1


def _dry_run(parser: Any) -> Any:
    """A copy of the parser that builds no tree nodes: lark's tree builder may extend the
    children of a node on the value stack in place, which the real parse shares."""
    trial = parser.copy(deepcopy_values=False)
    conf = copy(trial.parser_state.parse_conf)
    conf.callbacks = {}
    trial.parser_state.parse_conf = conf
    return trial


def lexer_state(parser: Any) -> LexerState:
    """The lexer's place in the text (always set while lark parses text)."""
    state = parser.lexer_thread.state
    assert isinstance(state, LexerState)
    return state


def _resume_at(state: LexerState, token: Token, offset: int) -> None:
    """Move the lexer back to `offset` characters into `token` (which holds no newline)."""
    assert token.start_pos is not None and token.column is not None and token.line is not None
    counter = state.line_ctr
    counter.char_pos = token.start_pos + offset
    counter.line = token.line
    counter.column = token.column + offset
    counter.line_start_pos = token.start_pos - token.column + 1


def _drop_block(state: LexerState) -> None:
    """Move the lexer past the '}' (or ']', ')') that closes the opener just read."""
    text = state.text.text
    start = state.line_ctr.char_pos
    assert isinstance(text, str)
    state.line_ctr.feed(text[start:block_end(text, start)])


_KEYWORD_TYPES = {word: word.replace("-", "_").upper() for word in fastparse.STATEMENT_WORDS}
_OPENERS = frozenset({"LBRACE", "LSQB", "LPAR"})
_BLOCK_TEXT = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|[{}\[\]()]')


def block_end(text: str, start: int) -> int:
    """Where the block opened just before `start` ends: after its closer, or the text's end.
    Strings and comments are passed over; any closer closes any opener, as a person's
    unbalanced text would be read anyway."""
    depth = 1
    for m in _BLOCK_TEXT.finditer(text, start):
        char = m.group()
        if char in "{[(":
            depth += 1
        elif char in "}])":
            depth -= 1
            if depth == 0:
                return m.end()
    return len(text)


def _as_label(token: Token) -> Token | None:
    """A name as a label: after `runs-on gpu`, a name is most likely a label missing its
    comma, which lark lexed as a NAME because no label can come there."""
    if token.type == "NAME" and fastparse.LABEL.fullmatch(str(token)):
        return Token.new_borrow_pos("LABEL", str(token), token)
    return None


def _stand_in(kind: str, at: Token, literal: dict[str, str]) -> Token:
    return Token.new_borrow_pos(kind, STAND_INS.get(kind) or literal.get(kind, kind.lower()), at)
