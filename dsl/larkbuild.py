"""The one lark parser of the language: built on first use, with the keyword rules of
`fastparse` in its lexer. Only the lark side of parsing (`larkparse`, `syntaxmsg`) imports it.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from copy import copy
from typing import Any

from lark import Lark, Token
from lark.lexer import ContextualLexer, LexerState

from . import fastparse


class _KeywordLexer(ContextualLexer):
    """lark's contextual lexer, plus two rules about keywords (as `fastparse` reads them).

    A keyword followed by ':' is a key: LALR merges the states after an expression, so
    `timeout` after `{ a: 1` is a keyword for lark; where a name may also stand and a ':'
    follows, it can only be a key. And a keyword is a whole word: where no name may stand,
    lark would read `jobs` as the keyword `job` and a name `s`.
    """

    def __init__(self, conf: Any, states: dict[int, Any], always_accept: Any = ()) -> None:
        if not conf.strict:
            # The terminal collision analysis (interegular) takes lark seconds to minutes; it
            # belongs to the strict build, which a test runs, not to every start.
            conf = copy(conf)
            conf.skip_validation = True
        super().__init__(conf, states, always_accept)
        self._name_states = frozenset(s for s, accepts in states.items() if "NAME" in accepts)

    def lex(self, lexer_state: LexerState, parser_state: Any) -> Iterator[Token]:
        for token in super().lex(lexer_state, parser_state):
            if token.type in fastparse.KEYWORD_TYPES:
                text = lexer_state.text.text
                assert isinstance(text, str)
                rest = _WORD_REST.match(text, lexer_state.line_ctr.char_pos)
                if rest is not None:
                    lexer_state.line_ctr.feed(rest.group(), test_newline=False)
                    token = Token.new_borrow_pos("NAME", str(token) + rest.group(), token)
                    token.end_column = lexer_state.line_ctr.column
                    token.end_pos = lexer_state.line_ctr.char_pos
                elif (parser_state.position in self._name_states
                        and fastparse.KEY_FOLLOW.match(text, lexer_state.line_ctr.char_pos)):
                    token = Token.new_borrow_pos("NAME", str(token), token)
            yield token


_WORD_REST = re.compile(r"[A-Za-z0-9_]+")


@functools.cache
def lark_parser() -> Lark:
    """The one lark parser for the language, built on first use (in about 0.2 s).

    Files without syntax errors never get here (`fastparse` reads them), so most commands
    never build it."""
    return build_lark(strict=False)


def build_lark(*, strict: bool) -> Lark:
    """Build the lark parser. `strict=True` (for the tests) makes grammar conflicts and
    colliding terminals errors; it needs `interegular` and takes far longer.

    No cache file: building takes about as long as loading lark's pickle from the shared
    temporary folder, which another local user could plant."""
    return Lark.open_from_package(
        "baseshift.grammar", "baseshift.lark", parser="lalr", lexer="contextual",
        start=["file", "expr"], propagate_positions=True, maybe_placeholders=True,
        strict=strict, _plugins={"ContextualLexer": _KeywordLexer},
    )




@functools.cache
def literals() -> dict[str, str]:
    """The text of each terminal that is a fixed string: {"LBRACE": "{", "JOB": "job", ...}."""
    return {t.name: str(t.pattern.value) for t in lark_parser().terminals
            if t.pattern.type == "str"}
