"""How a setting's value is quoted back in a message about it."""
from __future__ import annotations

from baseshift.dsl.schemawords import shown


def test_a_string_value_is_quoted_with_its_quotes_and_controls_escaped() -> None:
    assert shown("zero") == 'the string "zero"'
    assert shown('say "hi"\n') == 'the string "say \\"hi\\"\\n"'


def test_a_long_string_value_is_shortened() -> None:
    assert shown("x" * 200) == f'the string "{"x" * 37}..."'
