"""plugins/auth/tokens.py: opaque secrets and their digests."""
from __future__ import annotations

import base64
import hashlib

from baseshift.plugins.auth.tokens import (
    API_TOKEN_PREFIX,
    REFRESH_TOKEN_PREFIX,
    digest,
    new_token,
    same,
)


def test_a_token_is_its_prefix_and_32_random_bytes() -> None:
    token = new_token(API_TOKEN_PREFIX)
    assert token.startswith("bsat_")
    raw = base64.urlsafe_b64decode(token.removeprefix("bsat_") + "=")
    assert len(raw) == 32
    assert new_token(REFRESH_TOKEN_PREFIX).startswith("bsrt_")
    assert len({new_token(API_TOKEN_PREFIX) for _ in range(100)}) == 100


def test_the_digest_is_sha256_hex() -> None:
    token = new_token(API_TOKEN_PREFIX)
    assert digest(token) == hashlib.sha256(token.encode()).hexdigest()
    assert digest(token) != digest(token + "x")


def test_same_compares_exactly() -> None:
    token = new_token(REFRESH_TOKEN_PREFIX)
    assert same(token, str(token))
    assert not same(token, token[:-1])
    assert not same(digest(token), digest(token[:-1]))
