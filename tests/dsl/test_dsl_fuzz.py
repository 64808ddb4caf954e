"""Property tests: nothing a user types raises, and the fast parser agrees with lark."""
from __future__ import annotations

from pathlib import Path

from dsl_helpers import compile_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baseshift.core.diagnostics import render_all
from baseshift.dsl import fastparse
from baseshift.dsl.larkparse import lark_parse

VALID = [p.read_text(encoding="utf-8")
         for p in sorted((Path(__file__).parent / "cases").glob("*/*.bsw"))]
TOKENS = ["{", "}", "(", ")", "[", "]", ",", ":", "?", "@", ".", "=", "==", "<", ">", "-",
          "+", "*", "%", '"', '"${', "}\"", "#", "\n", " ", "1", "2.5", "5s", "x", "a.b",
          *sorted(fastparse.KEYWORDS), '"s"', "^1.2", "@^1", "${input.x}", "\\", "\t",
          "runs-on", "runs-on gpu", "secret string", ": secret", "gpu,", "linux-x64", "-on",
          "\ufeff", "\x1b[2J", "\u00a0", "\x07", "'x'", "fetch-data", "a < b < c", "//", ";"]
FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FAST
@given(st.text(max_size=200))
def test_random_text_never_raises(text: str) -> None:
    compile_text(text)


@FAST
@given(st.lists(st.sampled_from(TOKENS), max_size=60).map(" ".join))
def test_random_token_soup_never_raises(text: str) -> None:
    compile_text(text)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    source = draw(st.sampled_from(VALID))
    words = source.split(" ")
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(words) - 1))
        action = draw(st.sampled_from(["drop", "insert", "replace", "swap"]))
        token = draw(st.sampled_from(TOKENS))
        if action == "drop" and len(words) > 1:
            words.pop(i)
        elif action == "insert":
            words.insert(i, token)
        elif action == "replace":
            words[i] = token
        elif i + 1 < len(words):
            words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


@FAST
@given(mutated())
def test_mutated_files_never_raise(source: str) -> None:
    compile_text(source)


@FAST
@given(mutated())
def test_messages_are_placed_in_the_file_and_printable(source: str) -> None:
    """Every diagnostic points into the file, and nothing the file holds reaches the
    terminal unescaped: the rendered text has no character but printable ones and newlines."""
    result = compile_text(source)
    lines = source.count("\n") + 1
    assert all(1 <= d.span.line <= lines and d.span.col >= 1 for d in result.diagnostics)
    text = render_all(list(result.diagnostics), {result.path: result.source})
    assert all(c.isprintable() or c == "\n" for c in text)


@FAST
@given(mutated())
def test_fast_parser_agrees_with_lark(source: str) -> None:
    fast = fastparse.parse_file(source)
    if fast is None:
        return  # lark reads it; nothing to compare
    slow = lark_parse(source, "x", "file")
    assert slow.diagnostics == ()
    assert fast == slow.tree


def test_every_case_file_parses_the_same_both_ways() -> None:
    for source in VALID:
        fast = fastparse.parse_file(source)
        slow = lark_parse(source, "x", "file")
        if fast is not None:
            assert fast == slow.tree
        else:
            assert slow.diagnostics
