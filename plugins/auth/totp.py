"""The second factor: TOTP codes (RFC 6238, as authenticator apps make them), the QR code
that enrols an app, and the one-time recovery codes for a lost device."""
from __future__ import annotations

import hmac
import re
import secrets

import pyotp
import segno

from .tokens import digest

STEP = 30
"""Seconds per code: what every authenticator app assumes."""

WINDOW = 1
"""Steps accepted either side of now: a code just typed as it changed, or a clock a little
off, still works; wider windows give guessing more chances."""

DIGITS = 6

RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
"""Crockford's base 32: no i, l, o or u, so nothing reads as another character."""

RECOVERY_GROUPS = 3
RECOVERY_GROUP_LENGTH = 4
"""Three groups of four, 60 random bits: beyond guessing, short enough to type."""

_LOOKALIKES = str.maketrans({"i": "1", "l": "1", "o": "0"})
_SEPARATORS = re.compile(r"[\s-]+")


def new_secret() -> str:
    """A new shared secret, base32 (160 bits, as RFC 4226 recommends)."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, account: str, issuer: str = "Base Shift") -> str:
    """The `otpauth://` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP).provisioning_uri(
        name=account, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """`uri` as an inline SVG element: no XML declaration, no namespace, no `style`
    attribute or element (colours are presentation attributes), so it can be placed in a
    page whose Content-Security-Policy forbids inline styles. The light background is drawn
    so the code scans on a dark theme too."""
    return segno.make(uri, error="m").svg_inline(
        scale=4, dark="#000", light="#fff", svgclass="totp-qr", lineclass=None,
        title="QR code for your authenticator app")


def accept_code(secret: str, code: str, last_step: int | None, now: float) -> int | None:
    """The time step `code` belongs to, if it is right for a step within the window around
    `now` and later than `last_step` (a code is good once); None otherwise."""
    code = _SEPARATORS.sub("", code)
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP)
    current = int(now // STEP)
    accepted = None
    # Every step of the window is computed, matching or not: timing does not tell which.
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code) and (
                last_step is None or step > last_step):
            accepted = step
    return accepted


def new_recovery_codes(n: int = 10) -> list[str]:
    """`n` fresh recovery codes like `7k2m-q9xd-4hr1`; show them once, keep their digests."""
    return ["-".join("".join(secrets.choice(RECOVERY_ALPHABET)
                             for _ in range(RECOVERY_GROUP_LENGTH))
                     for _ in range(RECOVERY_GROUPS)) for _ in range(n)]


def code_digest(code: str) -> str:
    """The digest kept for a recovery code. Case, spaces and dashes do not matter, nor
    does typing o for 0 or i and l for 1, so a code read from paper still matches."""
    return digest(_SEPARATORS.sub("", code).lower().translate(_LOOKALIKES))
