"""plugins/auth/totp.py: codes accepted within one step, once; the QR code; recovery codes."""
from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest

from baseshift.plugins.auth.totp import (
    RECOVERY_ALPHABET,
    accept_code,
    code_digest,
    new_recovery_codes,
    new_secret,
    provisioning_uri,
    qr_svg,
)

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = 1_700_000_010.0
STEP = int(NOW // 30)


def code_at(t: float) -> str:
    return pyotp.TOTP(SECRET).at(t)


def test_the_current_code_is_accepted_at_its_step() -> None:
    assert accept_code(SECRET, code_at(NOW), None, NOW) == STEP


def test_one_step_either_side_is_accepted_and_two_are_not() -> None:
    assert accept_code(SECRET, code_at(NOW - 30), None, NOW) == STEP - 1
    assert accept_code(SECRET, code_at(NOW + 30), None, NOW) == STEP + 1
    assert accept_code(SECRET, code_at(NOW - 60), None, NOW) is None
    assert accept_code(SECRET, code_at(NOW + 60), None, NOW) is None


def test_a_code_is_good_once() -> None:
    code = code_at(NOW)
    step = accept_code(SECRET, code, None, NOW)
    assert accept_code(SECRET, code, step, NOW + 5) is None
    # an older code still in the window is no good after a newer one was used
    assert accept_code(SECRET, code_at(NOW - 30), step, NOW) is None
    assert accept_code(SECRET, code_at(NOW + 30), step, NOW + 30) == STEP + 1


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12345a", "١٢٣٤٥٦"])
def test_malformed_codes_are_refused(code: str) -> None:
    assert accept_code(SECRET, code, None, NOW) is None


def test_a_wrong_code_is_refused() -> None:
    wrong = f"{(int(code_at(NOW)) + 1) % 1_000_000:06d}"
    assert accept_code(SECRET, wrong, None, NOW) is None


def test_spaces_in_a_typed_code_are_ignored() -> None:
    code = code_at(NOW)
    assert accept_code(SECRET, f" {code[:3]} {code[3:]} ", None, NOW) == STEP


def test_a_new_secret_works_with_authenticator_apps() -> None:
    secret = new_secret()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)  # base32, 160 bits
    assert accept_code(secret, pyotp.TOTP(secret).at(NOW), None, NOW) == STEP


def test_the_provisioning_uri_names_account_and_issuer() -> None:
    uri = urlparse(provisioning_uri(SECRET, "alice@example.org"))
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert uri.path == "/Base%20Shift:alice%40example.org"
    query = parse_qs(uri.query)
    assert query["secret"] == [SECRET] and query["issuer"] == ["Base Shift"]


def test_the_qr_code_is_inline_svg_without_styles() -> None:
    """Inlined under a CSP without 'unsafe-inline': no style attribute or element, no XML
    declaration; one well-formed <svg> element."""
    svg = qr_svg(provisioning_uri(SECRET, "alice"))
    assert svg.startswith("<svg") and "<?xml" not in svg
    root = ET.fromstring(svg)
    assert root.tag == "svg"
    for element in root.iter():
        assert element.tag != "style" and "style" not in element.attrib
    assert root.find("path") is not None or root.find("g/path") is not None


def test_recovery_codes_are_readable_distinct_and_long_enough() -> None:
    codes = new_recovery_codes()
    assert len(codes) == 10 and len(set(codes)) == 10
    alphabet = re.escape(RECOVERY_ALPHABET)
    for code in codes:
        assert re.fullmatch(rf"[{alphabet}]{{4}}-[{alphabet}]{{4}}-[{alphabet}]{{4}}", code)
    assert len(RECOVERY_ALPHABET) ** 12 >= 2 ** 60
    assert len(new_recovery_codes(3)) == 3


def test_a_recovery_code_digest_ignores_case_spaces_dashes_and_lookalikes() -> None:
    digest = code_digest("7k2m-q9xd-4hr1")
    assert digest == hashlib.sha256(b"7k2mq9xd4hr1").hexdigest()
    for typed in ("7K2M-Q9XD-4HR1", "7k2m q9xd 4hr1", " 7k2mq9xd4hrl ", "7k2m--q9xd-4hrI"):
        assert code_digest(typed) == digest
    assert code_digest("7k2m-q9xd-4hr2") != digest
    assert code_digest("0000-0000-0000") == code_digest("oooo-OOOO-0o0o")
