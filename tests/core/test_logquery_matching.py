"""A term's matching (core/logquery.py `term_spans`, what `LogQuery.matches` uses) means
exactly its regular expression (`term_pattern`), and stays quick for values with many `*`
that would make the regular expression backtrack for ever."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from baseshift.core.logquery import LogQuery, Term, term_pattern, term_spans

ALPHABET = "abAB*\n.ß"
FIELDS = st.sampled_from(("message", "job", "level"))


@settings(max_examples=2000, deadline=None)
@given(FIELDS, st.text(ALPHABET, max_size=5), st.text(ALPHABET.replace("*", ""), max_size=8))
def test_spans_exist_exactly_when_the_regular_expression_matches(
        field: str, value: str, text: str) -> None:
    term = Term(field, value)
    spans = list(term_spans(term, text))
    assert bool(spans) == (term_pattern(term).search(text) is not None), (term, text)
    for start, end in spans:  # every span is a match of the term on its own
        assert term_pattern(term).fullmatch(text[start:end]), (term, text, start, end)


def test_many_wildcards_on_a_long_line_that_they_miss_are_answered() -> None:
    value = "*".join(["a"] * 40) + "*b"
    text = "a" * 30_000
    for field in ("message", "job"):
        assert not LogQuery(Term(field, value)).matches({field: text})
    assert LogQuery(Term("message", value)).matches({"message": text + "b"})
    assert list(term_spans(Term("message", "a*b"), "xxaqqb ab")) == [(2, 6), (7, 9)]
