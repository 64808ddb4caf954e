"""The log query language: text to `core.logquery.LogQuery` and back.

`level:error AND NOT job:fetch*` is read by the lark grammar grammar/logquery.lark. Every
term is one token, so what can be wrong with a query is found on its tokens before lark
sees it, and all of it is reported at once: unknown fields, levels, empty values and
phrases, stray or unclosed parentheses, operators with nothing to join. lark then only
builds the tree (and would report what the checks missed in the same words). The tree is
built without recursion and its depth is bounded, so hostile input ends in a
`LogQueryError`, never a RecursionError.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput, UnexpectedToken

from baseshift.core.diagnostics import Diagnostic, Span
from baseshift.core.errors import LogQueryError
from baseshift.core.logquery import LEVELS, QUERY_FIELDS, And, LogQuery, Node, Not, Or, Term

from .report import closest

__all__ = ["MAX_DEPTH", "MAX_ERRORS", "MAX_LENGTH", "build_query_parser", "format_log_query",
           "parse_log_query", "query_parser"]

MAX_LENGTH = 4096
MAX_DEPTH = 64
MAX_ERRORS = 20
SYNTAX = "query.syntax"
FIELD = "query.field"
LEVEL = "query.level"
LIMIT = "query.limit"
KEYWORDS = ("AND", "OR", "NOT")
_OPERATORS = frozenset({"_AND", "_OR"})
_TERMS = frozenset({"FIELD_PHRASE", "FIELD_VALUE", "FIELD_UNCLOSED", "FIELD_EMPTY",
                    "PHRASE", "UNCLOSED", "WORD"})
_OPENS = _TERMS | {"LPAR", "_NOT"}
"""Tokens that can start an operand."""
_BARE = re.compile(r'[^\s()"]+\Z')
_FIELDISH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*:")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ESCAPE = re.compile(r'\\(["\\])')


@functools.cache
def query_parser() -> Lark:
    """The one lark parser of the query language, built on first use."""
    return build_query_parser(strict=False)


def build_query_parser(*, strict: bool) -> Lark:
    """LALR with a basic lexer; `strict=True` (a test) makes grammar conflicts and terminals
    that collide at the same priority errors."""
    return Lark.open_from_package("baseshift.grammar", "logquery.lark", parser="lalr",
                                  lexer="basic", propagate_positions=True, strict=strict)


@functools.cache
def query_lexer() -> Lark:
    """The grammar's lexer alone: `Lark.lex` of a parser builds a new lexer at each call."""
    return Lark.open_from_package("baseshift.grammar", "logquery.lark", parser=None,
                                  lexer="basic")


def parse_log_query(text: str, *, path: str = "query") -> LogQuery:
    """Parse a query; an empty one matches every line. Raises `LogQueryError` with every
    problem found, each a diagnostic with its line:col span in `text`."""
    if not text.strip():
        return LogQuery(None, text)
    if len(text) > MAX_LENGTH:
        raise _error(text, [_too_long(text, path)])
    tokens = list(query_lexer().lex(text))
    problems = [*_check_characters(text, path), *_check_parentheses(tokens, path),
                *_check_operators(tokens, path),
                *(d for t in tokens if t.type in _TERMS for d in _check_term(t, path))]
    if problems:
        raise _error(text, problems)
    try:
        tree = query_parser().parse(text)
    except UnexpectedInput as e:  # the checks above should leave nothing for lark to find
        raise _error(text, [_unexpected(e, text, path)]) from None
    return LogQuery(_build(tree, path, text), text)


def _error(text: str, diagnostics: list[Diagnostic]) -> LogQueryError:
    """The error for the problems found, the first MAX_ERRORS of them in text order: a
    hostile query may have a thousand unclosed parentheses."""
    diagnostics.sort(key=Diagnostic.sort_key)
    return LogQueryError(diagnostics[:MAX_ERRORS], text)


# ---- checks on tokens


def _span(token: Token) -> Span:
    return Span(token.line or 1, token.column or 1, token.end_line or 1, token.end_column or 2)


def _at(text: str, pos: int) -> Span:
    line = text.count("\n", 0, pos) + 1
    return Span.point(line, pos - (text.rfind("\n", 0, pos) + 1) + 1)


def _too_long(text: str, path: str) -> Diagnostic:
    return Diagnostic(path, _at(text, MAX_LENGTH), LIMIT,
                      f"the query is {len(text)} characters long, longer than {MAX_LENGTH}",
                      "search for fewer things at once, or narrow the time range instead")


def _too_deep(span: Span, path: str) -> Diagnostic:
    return Diagnostic(path, span, LIMIT, f"the query nests more than {MAX_DEPTH} deep",
                      "remove parentheses or NOTs that are not needed")


def _check_characters(text: str, path: str) -> Iterator[Diagnostic]:
    """Control characters (but tab and newlines): no log line is searched for them, and a
    NUL would only make a SQL store refuse the query later."""
    for m in _CONTROL.finditer(text):
        yield Diagnostic(path, _at(text, m.start()), SYNTAX,
                         f"control character {m.group()!r} in the query", "remove it")


def _check_parentheses(tokens: list[Token], path: str) -> Iterator[Diagnostic]:
    opened: list[Token] = []
    deep = False
    for i, token in enumerate(tokens):
        if token.type == "LPAR":
            opened.append(token)
            if len(opened) > MAX_DEPTH and not deep:
                deep = True
                yield _too_deep(_span(token), path)
            if i + 1 < len(tokens) and tokens[i + 1].type == "RPAR":
                yield Diagnostic(path, Span(token.line or 1, token.column or 1,
                                            tokens[i + 1].end_line or 1,
                                            tokens[i + 1].end_column or 2),
                                 SYNTAX, "empty parentheses", "put terms inside, or remove them")
        elif token.type == "RPAR":
            if opened:
                opened.pop()
            else:
                yield Diagnostic(path, _span(token), SYNTAX, "')' closes nothing",
                                 "remove it, or add the '(' it closes")
    if opened:  # one diagnostic: "(((" would make a thousand
        more = len(opened) - 1
        yield Diagnostic(path, _span(opened[0]), SYNTAX, "'(' is never closed"
                         + (f", nor are {more} more after it" if more else ""),
                         "add a ')' where each group ends")


def _check_operators(tokens: list[Token], path: str) -> Iterator[Diagnostic]:
    """AND and OR need an operand on both sides, NOT one after it."""
    for i, token in enumerate(tokens):
        if token.type not in ("_AND", "_OR", "_NOT"):
            continue
        before = tokens[i - 1].type if i else None
        after = tokens[i + 1].type if i + 1 < len(tokens) else None
        if token.type != "_NOT" and before not in _TERMS | {"RPAR", "_NOT"}:
            yield Diagnostic(path, _span(token), SYNTAX, f"'{token}' has nothing before it",
                             _operator_hint(str(token)))
        elif after not in _OPENS and (token.type == "_NOT" or after not in _OPERATORS):
            yield Diagnostic(path, _span(token), SYNTAX, f"'{token}' has nothing after it",
                             _operator_hint(str(token)))


def _operator_hint(keyword: str) -> str:
    example = "NOT job:fetch" if keyword == "NOT" else f"level:error {keyword} job:fetch"
    return (f"write {example}; to search for the word itself, write it in lower case or "
            f"quote it: \"{keyword}\"")


def _check_term(token: Token, path: str) -> Iterator[Diagnostic]:
    text = str(token)
    field: str | None = None
    value = text
    if token.type.startswith("FIELD_"):
        field, _, value = text.partition(":")
    line, col = token.line or 1, token.column or 1
    value_span = Span(line, col + len(field) + 1 if field else col,
                      token.end_line or line, token.end_column or col + 1)
    if field is not None:
        yield from _check_field(field, Span(line, col, line, col + len(field)), path)
    if token.type == "FIELD_EMPTY":
        yield Diagnostic(path, Span(line, col, line, col + len(text)), SYNTAX,
                         f"'{field}:' has no value",
                         f'write the value right after the colon: {field}:value or '
                         f'{field}:"a phrase"')
    elif token.type in ("UNCLOSED", "FIELD_UNCLOSED"):
        yield Diagnostic(path, value_span, SYNTAX, "unterminated phrase",
                         'end it with a \'"\'; inside a phrase write \\" for a quote and '
                         "\\\\ for a backslash")
    elif value == '""':
        yield Diagnostic(path, value_span, SYNTAX, "empty phrase",
                         "write the text to search for between the quotes, or remove them")
    elif field == "level" and not _is_level(_unquote(value) if value[:1] == '"' else value):
        shown = _unquote(value) if value[:1] == '"' else value
        yield Diagnostic(path, value_span, LEVEL, f"unknown level '{shown}'",
                         _choices(shown.lower(), LEVELS, "levels"))


def _choices(name: str, choices: tuple[str, ...], kind: str) -> str:
    """`did you mean 'x'? the {kind} are: ...` (without the question when none is close)."""
    listed = f"the {kind} are: " + ", ".join(choices)
    suggestion = closest(name, choices)
    return f"{suggestion} {listed[0].upper()}{listed[1:]}" if suggestion else listed


def _check_field(field: str, span: Span, path: str) -> Iterator[Diagnostic]:
    if field in QUERY_FIELDS:
        return
    if field in KEYWORDS:
        yield Diagnostic(path, span, SYNTAX, f"'{field}' is an operator, not a field",
                         f"put a space after '{field}', or quote the text to search for "
                         f"it: \"{field}:...\"")
    elif field == "timestamp":
        yield Diagnostic(path, span, FIELD, "the query cannot name 'timestamp'",
                         "choose the time with the search's from and to instead")
    else:
        yield Diagnostic(path, span, FIELD, f"unknown field '{field}'",
                         _choices(field.lower(), QUERY_FIELDS, "fields")
                         + "; to search the message for this text, quote it")


def _is_level(value: str) -> bool:
    pattern = re.compile(".*".join(map(re.escape, value.split("*"))), re.IGNORECASE)
    return any(pattern.fullmatch(level) for level in LEVELS)


def _unquote(phrase: str) -> str:
    r"""The text of a "phrase": `\"` and `\\` are escapes, any other backslash is itself."""
    return _ESCAPE.sub(r"\1", phrase[1:-1])


def _unexpected(e: UnexpectedInput, text: str, path: str) -> Diagnostic:
    """lark's error in our words (never its message, which names its terminals)."""
    hint = "join terms with AND, OR and NOT, and group them with ( )"
    if not isinstance(e, UnexpectedToken):
        return Diagnostic(path, Span.point(e.line or 1, e.column or 1), SYNTAX,
                          "unexpected character", hint)
    if e.token.type == "$END":
        return Diagnostic(path, _at(text, len(text.rstrip())), SYNTAX,
                          "the query ends too early", "finish the last term or group")
    return Diagnostic(path, _span(e.token), SYNTAX, f"unexpected '{e.token}'", hint)


# ---- the tree, built without recursion


def _build(tree: Tree[Token], path: str, text: str) -> Node:
    """The LogQuery tree of lark's tree, bottom-up with an explicit stack; a node deeper
    than MAX_DEPTH (NOT NOT NOT ...) is an error."""
    done: dict[int, Node] = {}
    stack: list[tuple[Tree[Token], int, bool]] = [(tree, 1, False)]
    while stack:
        node, depth, ready = stack.pop()
        if node.data == "term":
            done[id(node)] = _term(node.children[0])  # type: ignore[arg-type]
            continue
        if depth > MAX_DEPTH:
            meta = node.meta
            raise _error(text, [_too_deep(Span(meta.line, meta.column, meta.line,
                                                    meta.column + 3), path)])
        children = [c for c in node.children if isinstance(c, Tree)]
        if not ready:
            stack.append((node, depth, True))
            stack.extend((c, depth + 1, False) for c in children)
            continue
        operands = tuple(done.pop(id(c)) for c in children)
        if node.data == "negation":
            done[id(node)] = Not(operands[0])
        elif node.data == "and_expr":
            done[id(node)] = And(operands)
        else:
            done[id(node)] = Or(operands)
    return done[id(tree)]


def _term(token: Token) -> Term:
    text = str(token)
    field: str | None = None
    if token.type.startswith("FIELD_"):
        field, _, text = text.partition(":")
    return Term(field, _unquote(text) if text.startswith('"') else text)


# ---- back to text


def format_log_query(query: LogQuery) -> str:
    """The canonical text of a query: explicit AND, parentheses only where needed, values
    quoted only when they must be. It parses back to the same tree."""
    if query.root is None:
        return ""
    out: list[str] = []
    stack: list[Node | str] = [query.root]
    while stack:  # without recursion, like the parser: a tree may be as deep as it likes
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, Term):
            out.append(_format_term(item))
        elif isinstance(item, Not):
            stack.extend(reversed(["NOT ", *_grouped(item.operand, (And, Or))]))
        else:
            if not item.operands:
                raise ValueError(f"an empty {type(item).__name__} has no text")
            inner = (And, Or) if isinstance(item, And) else (Or,)
            joiner = " AND " if isinstance(item, And) else " OR "
            parts: list[Node | str] = []
            for i, operand in enumerate(item.operands):
                parts.extend([joiner] if i else [])
                parts.extend(_grouped(operand, inner))
            stack.extend(reversed(parts))
    return "".join(out)


def _grouped(node: Node, kinds: tuple[type, ...]) -> list[Node | str]:
    return ["(", node, ")"] if isinstance(node, kinds) else [node]


def _format_term(term: Term) -> str:
    value = term.value
    bare = bool(_BARE.match(value)) and (term.field is not None or (
        value not in KEYWORDS and not _FIELDISH.match(value)))
    if not bare:
        value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{term.field}:{value}" if term.field is not None else value
