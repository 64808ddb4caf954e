"""The grammar and the two parsers: strict LALR build, keywords, spans, syntax errors."""
from __future__ import annotations

import pytest
from dsl_helpers import codes, compile_text

from baseshift.core.diagnostics import Span
from baseshift.core.errors import DSLError
from baseshift.core.expr import Attr, Binary, Interp, Literal, Name, ObjectExpr
from baseshift.dsl import fastparse, parse_expression
from baseshift.dsl.larkparse import build_lark, lark_parse, lark_parser
from baseshift.dsl.parser import parse_source


@pytest.mark.slow
def test_grammar_builds_strict_lalr() -> None:
    """The runtime parser skips the terminal collision analysis; this build makes sure there
    is nothing for it to find (no LALR conflict, no two terminals matching the same text)."""
    parser = build_lark(strict=True)
    assert parser.options.parser == "lalr" and parser.options.strict
    assert lark_parser() is lark_parser()
    assert not lark_parser().options.strict


def test_keyword_list_matches_grammar() -> None:
    from_grammar = {str(t.pattern.value) for t in lark_parser().terminals
                    if t.pattern.type == "str" and str(t.pattern.value).isidentifier()}
    assert from_grammar == set(fastparse.KEYWORDS)


@pytest.mark.parametrize("text", [
    "input.amount", "x.output", "max(xs)", "{ timeout: 5, input: 1, max: 2 }",
    "job.needs.with", "{ a: 1\n  in: 2\n  and: 3\n  timeout: 4 }",
])
def test_keywords_are_names_where_no_keyword_fits(text: str) -> None:
    parse_expression(text)


def test_interpolation_spans_point_into_the_string() -> None:
    source = 'workflow w {\n  version "1.0.0"\n  output { a: "x ${input.order_id} y" }\n}\n'
    tree = parse_source(source, "t.bsw").tree
    assert tree is not None
    block = tree.workflows[0].body[1]
    interp = block.values.fields[0][1]  # type: ignore[attr-defined]
    assert isinstance(interp, Interp)
    attr = interp.parts[1]
    assert isinstance(attr, Attr) and attr.span == Span(3, 20, 3, 34)
    line = source.splitlines()[2]
    assert line[attr.span.col - 1: attr.span.end_col - 1] == "input.order_id"


def test_string_escapes_and_plain_strings() -> None:
    assert parse_expression(r'"a\"b\n\${x}"') == Literal('a"b\n${x}', Span(1, 1, 1, 14))
    e = parse_expression('"${a}"')
    assert isinstance(e, Interp) and e.parts == (Name("a", Span(1, 4, 1, 5)),)


def test_precedence() -> None:
    e = parse_expression("not a == 1 and b or c + 2 * 3 > 4")
    assert isinstance(e, Binary) and e.op == "or"
    right = e.right
    assert isinstance(right, Binary) and right.op == ">"
    assert isinstance(right.left, Binary) and right.left.op == "+"


@pytest.mark.parametrize("text", ["a +", "a == b == c", "(a", "a b", "- not a", "1 +* 2"])
def test_bad_expressions_raise_dsl_error(text: str) -> None:
    with pytest.raises(DSLError) as info:
        parse_expression(text)
    assert info.value.diagnostics and info.value.diagnostics[0].code == "dsl.syntax"


def test_syntax_errors_name_expected_tokens_in_words() -> None:
    result = compile_text('workflow w {\n  version "1.0.0"\n  job a uses shell {\n'
                          '    needz b\n  }\n}\n')
    [d] = result.diagnostics
    assert d.message == ("unexpected name 'needz'; expected '}' or a job statement "
                         "(needs, when, with, ...)")
    assert d.span == Span(4, 5, 4, 10) and d.hint


def test_several_syntax_errors_are_reported() -> None:
    source = ('workflow w {\n  version "1.0.0"\n  job a uses shell { when x = 1 }\n'
              '  job b uses shell { needs a b }\n  job c shell { }\n}\n')
    assert codes(source) == ["dsl.syntax"] * 3


def test_semantic_errors_are_all_reported() -> None:
    source = ('workflow w {\n  version "1.0.0"\n  job a uses nope { }\n'
              '  job b uses shell { needs zz  with { command: "${input.q}" } }\n}\n')
    assert codes(source) == ["dsl.unknown-executor", "dsl.unknown-job", "dsl.unknown-input"]


def test_keyword_key_after_a_value_without_comma() -> None:
    source = ('workflow w {\n  version "1.0.0"\n  job a uses http {\n'
              '    with { url: "http://x"\n           timeout: 5 }\n  }\n}\n')
    result = compile_text(source)
    assert result.ok and result.plan is not None
    config = result.plan.jobs[0].config
    assert isinstance(config, ObjectExpr) and config.keys() == ["url", "timeout"]


def test_fast_and_lark_parsers_agree_on_the_reference_example() -> None:
    from pathlib import Path

    source = (Path(__file__).parent / "cases/valid/order_fulfillment.bsw").read_text()
    fast = fastparse.parse_file(source)
    slow = lark_parse(source, "x", "file")
    assert fast is not None and slow.diagnostics == () and fast == slow.tree


@pytest.mark.parametrize("open_, close", [("(", ")"), ("[", "]"), ("-", "")])
def test_deep_nesting_never_crashes(open_: str, close: str) -> None:
    source = 'workflow w {\n  version "1.0.0"\n  output { a: ' + open_ * 3000 + "1" + \
        close * 3000 + " }\n}\n"
    result = compile_text(source)
    assert result.ok or result.diagnostics[0].code == "dsl.syntax"


def test_many_errors_are_capped() -> None:
    source = "workflow w {\n" + "  @\n" * 200 + "}\n"
    assert 1 <= len(codes(source)) <= 20
