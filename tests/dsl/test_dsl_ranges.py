"""`uses name@RANGE`: every npm range form can be written, both parsers read it alike, and
the checker picks the version npm would pick."""
from __future__ import annotations

import pytest
from dsl_helpers import compile_text

from baseshift.dsl import ast, fastparse
from baseshift.dsl.larkparse import lark_parse

TEMPLATES = "".join(f'template t {{\n  version "{v}"\n  uses shell\n  with {{ command: "x" }}\n}}\n'
                    for v in ("1.2.0", "1.2.8", "1.3.0", "2.0.0-beta.1"))


def _workflow(written: str) -> str:
    return f'workflow w {{\n  version "1.0.0"\n  job a uses t@{written} {{ }}\n}}\n'


@pytest.mark.parametrize(("written", "picked"), [
    (">1.2", "1.3.0"),
    ("<=1.2.x", "1.2.8"),
    ("<1.3", "1.2.8"),
    ("1.2.0||1.2.8", "1.2.8"),
    ('"1.2.0 - 1.2.7 || ~1.3"', "1.3.0"),
    ('"1.2.0 - 1.2.8"', "1.2.8"),
    ('">= 1.2.0 < 1.3"', "1.2.8"),
    (">=1.2,<1.3", "1.2.8"),
    ("v1.2.0", "1.2.0"),
    ("~>1.2", "1.2.8"),
    ("^2.0.0-beta", "2.0.0-beta.1"),
    ("*", "1.3.0"),
])
def test_the_checker_picks_what_npm_picks(written: str, picked: str) -> None:
    compiled = compile_text(TEMPLATES + _workflow(written))
    assert compiled.diagnostics == ()
    assert compiled.plan is not None
    template = compiled.plan.job("a").template
    assert template is not None and template.ref == f"t@{picked}"


@pytest.mark.parametrize("written", ["<=1.2.x", "1.2.0||1.3.0", '"1.2.0 - 1.2.8"',
                                     '">= 1.2.0 < 1.3"', ">=1.2,<1.3", "v1.2.0", "^2.0.0-beta"])
def test_both_parsers_read_a_range_whole(written: str) -> None:
    source = _workflow(written)
    fast = fastparse.parse_file(source)
    slow = lark_parse(source, "x", "file")
    assert fast is not None and slow.diagnostics == () and fast == slow.tree
    job = next(s for s in fast.workflows[0].body if isinstance(s, ast.Job))
    assert job.uses.range is not None and job.uses.range.value == written.strip('"')


def test_a_bad_range_is_reported_at_the_range_with_valid_ones_as_hint() -> None:
    (d,) = compile_text(TEMPLATES + _workflow('"1.2.x.3 || ^1"')).diagnostics
    assert (d.code, d.span.line, d.span.col) == ("dsl.bad-version", 23, 16)
    assert d.message == "'1.2.x.3' in '1.2.x.3 || ^1' is not a version range: " \
                        "a number cannot follow a wildcard (x, X or *)"
    assert d.hint is not None and d.hint.startswith("valid ranges look like ^1.2, ")
