"""Opaque bearer secrets (API and refresh tokens) and the digests the store keeps of them.

A token is 256 random bits behind a prefix that names its kind, so a leaked one is easy to
recognise (secret scanners, logs) and never mistaken for another kind. The store keeps only
a SHA-256 digest: the secret has full entropy, so a slow hash would add nothing, and the
digest can be looked up directly.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

API_TOKEN_PREFIX = "bsat_"
REFRESH_TOKEN_PREFIX = "bsrt_"
TOKEN_BYTES = 32


def new_token(prefix: str) -> str:
    """A fresh secret: `prefix` and 32 random bytes, URL-safe base64 without padding."""
    return prefix + secrets.token_urlsafe(TOKEN_BYTES)


def digest(secret: str) -> str:
    """The SHA-256 hex digest kept in place of `secret`."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    """Compare two secrets or digests in time independent of where they differ."""
    return hmac.compare_digest(a.encode(), b.encode())
