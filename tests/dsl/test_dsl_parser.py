"""The grammar and the two parsers: strict LALR build, keywords, spans, syntax errors."""
from __future__ import annotations

import json

import pytest
from dsl_helpers import codes, compile_text

from baseshift.core.diagnostics import Diagnostic, Span, render, render_all
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


# ---- syntax errors: every error reported once, at its place, with no follow-ons

_BODY = ('workflow w {{\n  version "1.0.0"\n  input {{ day: string, limit: number = 1 }}\n'
         '  job fetch uses shell {{\n{fetch}\n  }}\n'
         '  job load uses shell {{\n{load}\n  }}\n}}\n')
_FETCH = '    with { command: "fetch" }\n    timeout 1m'
_LOAD = '    needs fetch\n    when input.limit > 0\n    with { command: "load" }'


def _file(fetch: str = _FETCH, load: str = _LOAD) -> str:
    return _BODY.format(fetch=fetch, load=load)


def _where(source: str) -> list[tuple[str, int, int]]:
    return [(d.code, d.span.line, d.span.col) for d in compile_text(source).diagnostics]


def test_a_syntax_error_does_not_hide_semantic_errors() -> None:
    """Issue 10 (8): one syntax error and two independent semantic errors are three errors."""
    source = _file(fetch='    with { command: "fetch" }\n    retry 3 backof 5s',
                   load='    needs fetchh\n    when input.limitt > 0\n    with { command: "x" }')
    assert _where(source) == [("dsl.syntax", 6, 13), ("dsl.unknown-job", 9, 11),
                              ("dsl.unknown-input", 10, 10)]


@pytest.mark.parametrize("fetch", [
    '    with { command: 1 }\n    retries 3',     # a statement word misspelled
    '    with { command: 1, }\n    timeout 60',   # a duration without its unit
    "    with { command: 'x' }",                 # single quotes
])
def test_a_broken_job_is_not_checked_and_its_dependents_find_it(fetch: str) -> None:
    """The job holding the syntax error keeps its name, so `needs fetch` finds it; what is
    inside it (a number for `command`) is not reported: the repair may have made it."""
    assert [code for code, *_ in _where(_file(fetch=fetch))] == ["dsl.syntax"]


@pytest.mark.parametrize("header", ["jobs fetch uses shell {", "job fetch uses shell\n"])
def test_a_job_lost_to_a_syntax_error_is_not_reported_as_missing(header: str) -> None:
    source = _file().replace("job fetch uses shell {", header)
    assert [code for code, *_ in _where(source)] == ["dsl.syntax"]


def test_a_broken_input_block_makes_no_unknown_input_errors() -> None:
    source = _file().replace("input { day: string, limit: number = 1 }",
                             "input { day: string, limit number = 1 }")
    assert _where(source) == [("dsl.syntax", 3, 30)]


def test_a_keyword_is_a_whole_word() -> None:
    """lark read `jobs` as `job` and a job named `s` where no name could stand."""
    source = 'workflow w {\n  version "1.0.0"\n  jobs uses shell { with { command: "x" } }\n}\n'
    [d] = compile_text(source).diagnostics
    assert (d.code, d.span, d.message.startswith("unexpected name 'jobs'")) == \
        ("dsl.syntax", Span(3, 3, 3, 7), True)


@pytest.mark.parametrize("load, at, message, hint", [
    # a trailing comma: the next statement word reads as a job name
    ('    needs fetch,\n    with { command: "x" }', (9, 16), "this ',' ends a list", "remove"),
    ('    needs fetch,\n    when input.limit > 0', (9, 16), "this ',' ends a list", "remove"),
    # a misspelled statement word: no "'{' not closed"
    ('    needs fetch\n    retries 3', (10, 5), "unexpected name 'retries'",
     "did you mean 'retry'?"),
    ('    with { command: "x" }\n    timout 5s', (10, 5), "unexpected name 'timout'",
     "did you mean 'timeout'?"),
    ('    with { command: "x" }\n    command: "y"', (10, 5), "unexpected name 'command'",
     "a job's statements are"),
    # strings
    ('    with { command: "a ${input.day + \\"x\\"}" }', (9, 38),
     "inside '${...}' a string is written with plain quotes", 'input.day + "x"'),
    ('    with { command: "a ${input.day" }', (9, 24), "'${' is not closed", "close it"),
    ('    with { command: "load }', (9, 21), "string is not closed on its line", "end it"),
    ("    with { command: 'load' }", (9, 21), "double quotes", 'write "load"'),
    ("    with { command: \u201cload\u201d }", (9, 21), "double quotes", 'write "load"'),
    # names and operators
    ("    needs fetch-data", (9, 11), "'fetch-data' is not a name", "write fetch_data"),
    ("    needs fetch\n    when 0 < input.limit < 5", (10, 26), "comparisons do not chain",
     "and"),
    ("    needs fetch\n    when (input.limit > 0\n    retry 2", (10, 26),
     "a '(' is not closed", "add ')'"),
    ("    needs fetch\n    when input.limit > 0 && true", (10, 26), "unexpected text '&&'",
     "with words"),
    ("    needs fetch\n    when input.limit = 0", (10, 22), "unexpected '='", "'=='"),
    # foreign syntax and invisible characters
    ("    needs fetch;", (9, 16), "unexpected ';'", "remove"),
    ("    // load it\n    needs fetch", (9, 5), "comments start with '#'", "#"),
    ("    \ufeffneeds fetch", (9, 5), "byte-order mark", "delete it"),
    ("    needs\u00a0fetch", (9, 10), "no-break space", "delete it"),
    ("    needs fetch \x1b[2J", (9, 17), "escape character", "delete it"),
    # blocks
    ('    with command: "x"', (9, 10), "unexpected name 'command'", "'with' takes an object"),
    ("    needs fetch\n    when", (11, 3), "unexpected '}'", None),
])
def test_each_mistake_is_one_error_at_its_place(
        load: str, at: tuple[int, int], message: str, hint: str | None) -> None:
    """Issue 10 (9): the exact line and column, a hint only when it is right, and nothing
    else: no follow-on error in the lines after the mistake."""
    [d] = compile_text(_file(load=load)).diagnostics
    assert (d.code, (d.span.line, d.span.col)) == ("dsl.syntax", at), d
    assert message in d.message, d.message
    assert (d.hint is None) if hint is None else (d.hint is not None and hint in d.hint), d.hint


def test_an_extra_brace_is_blamed_not_what_follows_it() -> None:
    source = _file().replace("    timeout 1m\n  }\n", "    timeout 1m\n  }\n  }\n")
    [d] = compile_text(source).diagnostics
    assert (d.span.line, d.span.col) == (8, 3) and "closes the workflow" in d.message


def test_an_unclosed_input_block_is_one_error_at_the_next_statement() -> None:
    source = _file().replace("input { day: string, limit: number = 1 }",
                             "input { day: string, limit: number = 1")
    [d] = compile_text(source).diagnostics
    assert (d.span.line, d.span.col) == (4, 3) and d.message.startswith("unexpected 'job'")
    assert d.hint == "a '{' above is not closed; add the missing '}'"


# ---- what reaches the terminal

def test_messages_escape_what_a_terminal_would_act_on() -> None:
    """Escape sequences in a file must not reach the terminal: not in the message, the
    source line or the caret line, and the caret stays under the escaped text."""
    source = _file(load='    needs fetch \x1b[2J\x1b[31m')
    result = compile_text(source)
    text = render_all(list(result.diagnostics), {result.path: result.source})
    assert "\x1b" not in text
    lines = text.splitlines()
    excerpt, caret = lines[1], lines[2]
    assert excerpt.endswith("needs fetch \\x1b[2J\\x1b[31m")
    assert caret.index("^") == excerpt.index("\\x1b") and caret.count("^") == len("\\x1b")
    as_json = json.dumps([d.to_json() for d in result.diagnostics])
    assert "\\u001b" not in as_json and "(U+001B)" in as_json  # named by its code point


@pytest.mark.parametrize("char, shown", [("\ufeff", "\\u{FEFF}"), ("\x07", "\\x07"),
                                         ("\u202e", "\\u{202E}"), ("\x9b", "\\x9b")])
def test_invisible_characters_are_written_as_escapes(char: str, shown: str) -> None:
    d = Diagnostic("f.bsw", Span(1, 3, 1, 4), "dsl.syntax", f"bad {char}", f"hint {char}")
    text = render(d, f"ab{char}cd\n")
    assert text.splitlines() == [f"f.bsw:1:3: error[dsl.syntax]: bad {shown}",
                                 f"    1 | ab{shown}cd",
                                 "      |   " + "^" * len(shown),
                                 f"   hint: hint {shown}"]
    assert d.to_json()["message"] == f"bad {shown}"


def test_source_lines_are_counted_like_the_parsers_count_them() -> None:
    """A form feed or U+2028 is not a line end for the parsers, so not for the excerpt."""
    d = Diagnostic("f.bsw", Span(2, 1, 2, 2), "dsl.syntax", "x")
    assert render(d, "a\u2028b\x0cc\nzz\n").splitlines()[1] == "    2 | zz"


def _one(source: str) -> Diagnostic:
    [d] = compile_text(source).diagnostics
    return d


def test_a_mistake_inside_an_interpolation_keeps_its_own_hint() -> None:
    d = _one('workflow w {\n  version "1.0.0"\n'
             '  job a uses shell { with { command: "${1 < 2 < 3}" } }\n}\n')
    assert d.message == "comparisons do not chain: '<' and then '<'"
    assert d.hint == "compare two values at a time and join them with 'and', like a < b and b < c"


def test_the_double_quote_fix_escapes_what_the_single_quoted_text_holds() -> None:
    d = _one('workflow w {\n  version "1.0.0"\n'
             "  job a uses shell { with { command: 'say \"hi\" in C:\\temp' } }\n}\n")
    assert d.message == "strings are written in double quotes"
    assert d.hint == 'write "say \\"hi\\" in C:\\\\temp"'
