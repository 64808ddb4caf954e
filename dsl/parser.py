"""Parsing workflow files and expressions: the fast reader first, lark for the rest.

`fastparse` is a hand-written reader of the same grammar, several times faster than lark's
runtime on large files. Whatever it does not accept (a syntax error, or a construct it does
not know) goes to lark (`larkparse`), which reports every syntax error with the expected
tokens in words and a hint. A file without syntax errors never imports lark.
"""
from __future__ import annotations

from baseshift.core.errors import DSLError
from baseshift.core.expr import Expr

from . import fastparse
from .ast import Parsed


def parse_source(source: str, path: str) -> Parsed:
    """Parse a whole file; syntax problems come back as diagnostics, never as exceptions."""
    tree = fastparse.parse_file(source)
    if tree is not None:
        return Parsed(tree, ())
    from .larkparse import lark_parse

    return lark_parse(source, path, "file")


def parse_expression(text: str) -> Expr:
    """Parse one expression (as written in `when` or inside `${...}`).

    Raises:
        DSLError: with the syntax diagnostics when `text` is not an expression.
    """
    expr = fastparse.parse_expression(text)
    if expr is not None:
        return expr
    from .larkparse import lark_parse

    parsed = lark_parse(text, "<expression>", "expr")
    if parsed.tree is None or parsed.diagnostics:
        raise DSLError(f"not an expression: {text!r}", list(parsed.diagnostics))
    return parsed.tree  # type: ignore[return-value]  # the "expr" start gives an Expr
