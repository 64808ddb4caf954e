"""Finding and replacing lone UTF-16 surrogates in decoded JSON (core/json_text.py)."""
from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from baseshift.core.errors import InputError
from baseshift.core.json_text import (
    has_surrogate,
    refuse_surrogates,
    replace_surrogates,
    surrogate_path,
)

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                    max_leaves=12)


def utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@given(st.text())
def test_has_surrogate_is_exactly_what_utf8_cannot_write(text: str) -> None:
    assert has_surrogate(text) is not utf8(text)
    assert utf8(replace_surrogates(text))
    assert len(replace_surrogates(text)) == len(text)


@given(JSON)
def test_a_value_has_a_surrogate_path_exactly_when_its_json_cannot_be_utf8(value: Any) -> None:
    path = surrogate_path(value, "body")
    assert (path is None) is utf8(json.dumps(value, ensure_ascii=False))
    if path is not None:
        assert path.startswith("body") and utf8(path)


@pytest.mark.parametrize(("value", "path"), [
    ({"inputs": {"name": "\ud800"}}, "inputs.name"),
    ({"a": [1, {"b c": "x\udc80"}]}, 'a[1]["b c"]'),
    ({"\udc80": 1}, '["\\udc80"]'),
    ("\ud800", "$"),
    ([[], ["ok", "\udfff"]], "[1][1]"),
    ({"ok": "\U0001f600", "also": ["é"]}, None),
])
def test_the_path_names_the_field(value: Any, path: str | None) -> None:
    assert surrogate_path(value) == path


def test_nesting_deeper_than_the_stack_is_walked() -> None:
    value: Any = "\ud800"
    for _ in range(5000):
        value = [value]
    assert surrogate_path(value) == "[0]" * 5000


def test_refusal_is_a_422_naming_the_field() -> None:
    with pytest.raises(InputError) as caught:
        refuse_surrogates({"name": "\ud800"}, "inputs")
    assert caught.value.status == 422
    assert caught.value.details == {"field": "inputs.name"}
    assert "inputs.name holds text that is not valid Unicode" in caught.value.message
