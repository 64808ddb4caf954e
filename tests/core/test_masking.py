"""Masking secrets in jobs' logs, outputs and errors (core/masking.py): every encoding a step
may print a secret in, whatever surrounds it, and values built from secrets."""
from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

from hypothesis import given
from hypothesis import strategies as st

from baseshift.core.expr import Attr, Call, Literal, Name, ObjectExpr
from baseshift.core.masking import MASK, Masker, encodings, secret_fields

SECRET = 's3cr3t/"quoted"+välue&more'


def test_every_printed_form_of_a_secret_is_masked() -> None:
    raw = SECRET.encode()
    printed = [SECRET, base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode(),
               base64.b64encode(raw).decode().rstrip("="), quote(SECRET, safe=""),
               quote_plus(SECRET), json.dumps(SECRET)[1:-1], json.dumps(SECRET)]
    masker = Masker([SECRET])
    for form in printed:
        masked = masker.text(f"token={form};")
        assert SECRET not in masked and form.strip('"') not in masked, form
        assert MASK in masked


def test_json_values_are_masked_keys_included() -> None:
    masker = Masker(["hunter22"])
    assert masker.value({"a": ["x hunter22 y", 3, None], "hunter22": True}) == {
        "a": ["x *** y", 3, None], MASK: True}


def test_short_and_empty_values_are_not_masked() -> None:
    masker = Masker(["", "ab"])
    assert not masker
    assert masker.text("ab cd") == "ab cd"


def test_values_built_from_secrets_are_masked_too() -> None:
    config = ObjectExpr((("url", Literal("https://example.test")),
                         ("header", Call("upper", (Attr(Name("secret"), "TOKEN"),)))))
    value = {"url": "https://example.test", "header": "ABCDEF-123"}
    masker = Masker()
    masker.add_derived(secret_fields(config, value))
    assert masker.text("sent ABCDEF-123 to https://example.test") == (
        "sent *** to https://example.test")


@given(secret=st.text(min_size=3).filter(lambda s: "*" not in s),
       before=st.text(), after=st.text(), data=st.data())
def test_no_form_survives_masking(secret: str, before: str, after: str,
                                  data: st.DataObject) -> None:
    form = data.draw(st.sampled_from(sorted(encodings(secret))))
    masked = Masker([secret]).text(before + form + after)
    assert form not in masked
    assert secret not in masked
