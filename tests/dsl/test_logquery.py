"""The log query language: golden diagnostics, the trees queries parse into, and property
tests (a tree's canonical text parses back to it; no text raises anything but
LogQueryError). Regenerate the goldens with BASESHIFT_UPDATE_GOLDEN=1 and review the diff."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lark.exceptions import UnexpectedInput

from baseshift.core.diagnostics import render_all
from baseshift.core.errors import LogQueryError
from baseshift.core.logquery import LEVELS, QUERY_FIELDS, And, LogQuery, Node, Not, Or, Term
from baseshift.dsl.logquery import (
    MAX_DEPTH,
    MAX_LENGTH,
    _unexpected,
    build_query_parser,
    format_log_query,
    parse_log_query,
    query_parser,
)

CASES = Path(__file__).parent / "cases" / "logquery"
UPDATE = os.environ.get("BASESHIFT_UPDATE_GOLDEN") == "1"
NAMES = sorted(p.name for p in CASES.glob("*.query"))
PROPS = settings(max_examples=200, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _errors(text: str) -> LogQueryError:
    with pytest.raises(LogQueryError) as caught:
        parse_log_query(text)
    return caught.value


def w(value: str) -> Term:
    return Term(None, value)


# ---- golden diagnostics


@pytest.mark.parametrize("name", NAMES)
def test_logquery_golden(name: str) -> None:
    text = (CASES / name).read_text(encoding="utf-8")
    error = _errors(text)
    actual = render_all(error.diagnostics, {"query": error.source}) + "\n"
    golden = CASES / name.replace(".query", ".expected")
    if UPDATE:
        golden.write_text(actual, encoding="utf-8")
    assert golden.exists(), f"{golden} is missing; run with BASESHIFT_UPDATE_GOLDEN=1"
    assert actual == golden.read_text(encoding="utf-8")


def test_logquery_golden_cases_show_every_code() -> None:
    shown = "".join(p.read_text(encoding="utf-8") for p in CASES.glob("*.expected"))
    for code in ("query.syntax", "query.field", "query.level", "query.limit"):
        assert f"error[{code}]" in shown


def test_logquery_grammar_has_no_conflicts() -> None:
    """LALR conflicts and same-priority terminal collisions are errors in the strict build
    (lark would otherwise resolve them silently)."""
    build_query_parser(strict=True)


# ---- trees


def test_logquery_seed_example() -> None:
    query = parse_log_query("workflow_id:123 AND level:error")
    assert query == LogQuery(And((Term("workflow_id", "123"), Term("level", "error"))),
                             "workflow_id:123 AND level:error")


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_logquery_empty_matches_all(text: str) -> None:
    assert parse_log_query(text) == LogQuery(None, text)


@pytest.mark.parametrize(("text", "root"), [
    ("a b c", And((w("a"), w("b"), w("c")))),
    ("a OR b c", Or((w("a"), And((w("b"), w("c")))))),
    ("a b OR c", Or((And((w("a"), w("b"))), w("c")))),
    ("NOT a b", And((Not(w("a")), w("b")))),
    ("NOT a OR b", Or((Not(w("a")), w("b")))),
    ("NOT NOT a", Not(Not(w("a")))),
    ("NOT (a OR b)", Not(Or((w("a"), w("b"))))),
    ("(a OR b) c", And((Or((w("a"), w("b"))), w("c")))),
    ("(a AND b) AND c", And((And((w("a"), w("b"))), w("c")))),
    ("a AND b OR c AND NOT d", Or((And((w("a"), w("b"))), And((w("c"), Not(w("d"))))))),
    ("((((a))))", w("a")),
    ("a\nOR\n  b", Or((w("a"), w("b")))),
])
def test_logquery_precedence(text: str, root: Node) -> None:
    assert parse_log_query(text).root == root


@pytest.mark.parametrize(("text", "root"), [
    ("and or not", And((w("and"), w("or"), w("not")))),
    ("ANDROID NOTE ORACLE", And((w("ANDROID"), w("NOTE"), w("ORACLE")))),
    ('"AND"', w("AND")),
    ('"connection reset"', w("connection reset")),
    (r'"say \"hi\""', w('say "hi"')),
    (r'"C:\\temp\\x"', w("C:\\temp\\x")),
    (r'"C:\temp"', w("C:\\temp")),
    ('"two\nlines"', w("two\nlines")),
    ("fetch*", w("fetch*")),
    ("job:fetch*", Term("job", "fetch*")),
    ("job:*[3]", Term("job", "*[3]")),
    ("job:fetch[3]", Term("job", "fetch[3]")),
    ("run_id:r-01JEXAMPLE", Term("run_id", "r-01JEXAMPLE")),
    ("trace_id:4bf92f3577b34da6a3ce929d0e0e4736", Term("trace_id",
                                                       "4bf92f3577b34da6a3ce929d0e0e4736")),
    ("actor:cli:alice", Term("actor", "cli:alice")),
    ("event:run.failed", Term("event", "run.failed")),
    ("logger:baseshift.access", Term("logger", "baseshift.access")),
    ("message:2026-12-06T01:40:12Z", Term("message", "2026-12-06T01:40:12Z")),
    ("10:42:07", w("10:42:07")),
    ("/api/v1/workflows", w("/api/v1/workflows")),
    ('message:"connection reset"', Term("message", "connection reset")),
    ("level:ERROR", Term("level", "ERROR")),
    ("level:warn*", Term("level", "warn*")),
    ("job:AND", Term("job", "AND")),
])
def test_logquery_terms(text: str, root: Node) -> None:
    assert parse_log_query(text).root == root


def test_logquery_matches_what_it_says() -> None:
    query = parse_log_query('level:ERROR AND NOT job:fetch* AND "Connection reset"')
    line = {"level": "error", "job": "build", "message": "connection RESET by peer"}
    assert query.matches(line)
    assert not query.matches({**line, "job": "fetch[3]"})


def test_logquery_error_for_clients() -> None:
    error = _errors("lvl:error AND")
    assert (error.code, error.status) == ("logs.bad-query", 400)
    assert error.source == "lvl:error AND"
    assert [d.code for d in error.diagnostics] == ["query.field", "query.syntax"]
    assert error.message == "the log query is not valid: unknown field 'lvl' (and 1 more problem)"
    assert error.hint is not None and "did you mean 'level'?" in error.hint
    assert error.details["errors"][0]["col"] == 1  # type: ignore[index]


def test_logquery_error_message_is_printable() -> None:
    assert "\x1b" not in _errors("level:\x1b[2J").message


def test_logquery_docs_name_every_field() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "operations.md").read_text(encoding="utf-8")
    section = docs.split("### Log query syntax", 1)[1].split("\n## ", 1)[0]
    assert all(f"`{field}`" in section for field in (*QUERY_FIELDS, *LEVELS))


def test_logquery_error_path() -> None:
    with pytest.raises(LogQueryError) as caught:
        parse_log_query("x:1", path="saved search 'errors'")
    assert caught.value.diagnostics[0].path == "saved search 'errors'"


def test_logquery_lark_errors_are_worded_too() -> None:
    """The token checks leave lark nothing to find; if it does find something, the words
    are ours, never lark's message."""
    for text in ("a AND AND b", "a OR", "( )"):
        with pytest.raises(UnexpectedInput) as caught:
            query_parser().parse(text)
        d = _unexpected(caught.value, text, "query")
        assert d.code == "query.syntax" and "Token" not in d.message
        assert d.message in ("unexpected 'AND'", "the query ends too early", "unexpected ')'")


# ---- limits


def test_logquery_longest_query_is_read() -> None:
    text = " ".join(["abc"] * (MAX_LENGTH // 4)).ljust(MAX_LENGTH, "x")
    assert len(parse_log_query(text).text) == MAX_LENGTH


@pytest.mark.parametrize("text", [
    "x" * 100_000,
    '"' + "a OR (" * 20_000,
    "(" * 10_000 + "x" + ")" * 10_000,
    "(" * 10_000,
    "NOT " * 25_000 + "x",
])
def test_logquery_hostile_input_is_refused_cleanly(text: str) -> None:
    [d] = _errors(text).diagnostics
    assert d.code == "query.limit" and "longer than 4096" in d.message


@pytest.mark.parametrize("text", [
    "(" * 1000 + "x" + ")" * 1000,
    "NOT " * 1000 + "x",
    " ".join(["(a"] * 1000) + ")" * 1000,
    "(" * 2000,
])
def test_logquery_deep_nesting_is_refused_cleanly(text: str) -> None:
    assert any("nests more than 64" in d.message for d in _errors(text).diagnostics)


def test_logquery_nesting_up_to_the_limit_is_read() -> None:
    assert parse_log_query("(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH).root == w("x")
    node: Node = w("x")
    for _ in range(MAX_DEPTH):
        node = Not(node)
    assert parse_log_query("NOT " * MAX_DEPTH + "x").root == node


# ---- back to text


@pytest.mark.parametrize(("root", "text"), [
    (And((w("a"), Or((w("b"), w("c"))))), "a AND (b OR c)"),
    (Or((And((w("a"), w("b"))), w("c"))), "a AND b OR c"),
    (Not(And((w("a"), w("b")))), "NOT (a AND b)"),
    (And((And((w("a"), w("b"))), w("c"))), "(a AND b) AND c"),
    (w("OR"), '"OR"'),
    (w("x:y"), '"x:y"'),
    (w('say "hi" \\o/'), r'"say \"hi\" \\o/"'),
    (Term("actor", "cli:alice"), "actor:cli:alice"),
    (Term("job", "AND"), "job:AND"),
    (Term("message", "two words"), 'message:"two words"'),
])
def test_logquery_format(root: Node, text: str) -> None:
    assert format_log_query(LogQuery(root)) == text
    assert parse_log_query(text).root == root


def test_logquery_format_empty() -> None:
    assert format_log_query(LogQuery(None)) == ""
    with pytest.raises(ValueError, match="empty And"):
        format_log_query(LogQuery(And(())))


def _terms() -> st.SearchStrategy[Term]:
    letters = st.characters(blacklist_categories=("Cc", "Cs"), whitelist_characters="\t\n")
    words = st.text(letters, min_size=1, max_size=12)
    fields = st.sampled_from([f for f in QUERY_FIELDS if f != "level"])
    return st.one_of(
        st.builds(Term, st.none(), words),
        st.builds(Term, fields, words),
        st.builds(Term, st.just("level"), st.sampled_from(LEVELS)),
        st.builds(Term, st.none(), st.sampled_from(["AND", "OR", "NOT", "a:b", "*", '"', "\\"])),
    )


def _trees() -> st.SearchStrategy[Node]:
    def extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
        several = st.lists(children, min_size=2, max_size=4).map(tuple)
        return st.one_of(st.builds(Not, children), st.builds(And, several),
                         st.builds(Or, several))
    return st.recursive(_terms(), extend, max_leaves=12)


@PROPS
@given(_trees())
def test_logquery_format_parses_back(root: Node) -> None:
    text = format_log_query(LogQuery(root))
    assert parse_log_query(text) == LogQuery(root, text)


SOUP = ["(", ")", '"', "\\", ":", "*", "AND", "OR", "NOT", "and", "level:", "level:error",
        "lvl:x", "job:fetch*", '"a b"', "\n", " ", "\t", "x", "AND:", "timestamp:1", '\\"']


@PROPS
@given(st.one_of(st.text(max_size=300),
                 st.lists(st.sampled_from(SOUP), max_size=60).map("".join),
                 st.lists(st.sampled_from(SOUP), max_size=60).map(" ".join)))
def test_logquery_random_text_raises_only_logqueryerror(text: str) -> None:
    try:
        query = parse_log_query(text)
    except LogQueryError as e:
        assert e.diagnostics
        rendered = render_all(e.diagnostics, {"query": text})
        assert "Traceback" not in rendered and "Token(" not in rendered
        return
    assert parse_log_query(format_log_query(query)).root == query.root
