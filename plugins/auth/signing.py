"""Access tokens: short-lived JWTs signed with an asymmetric key kept in the state store.

Asymmetric keys let anyone holding the JWKS (the fleet's other servers, a gateway, a
client) verify a token without being able to mint one. Each key is bound to exactly one
algorithm (RFC 8725 3.1): the algorithm a token claims is checked against its key, never
trusted, so `none` and HMAC-with-the-public-key forgeries fail. Keys live in the store so
every server signs and verifies with the same ones; a rotation keeps the old key verifying
until the tokens it signed have expired.
"""
from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from jwt.types import Options

from baseshift.core import audit
from baseshift.core.audit import AuditEntry
from baseshift.core.errors import ConfigError, StoreError, Unauthorized
from baseshift.core.identity import SigningKeyRecord

ALGORITHMS = ("EdDSA", "ES256")
"""The algorithms keys may be made for (EdDSA is Ed25519). Never `none`, never HS*: a
shared secret would let every verifier mint tokens."""

TOKEN_TYPE = "at+jwt"
"""The `typ` header of an access token (RFC 9068), so no other JWT signed by the same keys
passes for one."""

LIFETIME = 900.0
LEEWAY = 30.0
"""Seconds of clock difference between the servers of a fleet that time checks forgive."""

RELOAD_AFTER = 3.0
"""A token naming a key this process does not know reloads the keys (another server may
have rotated), but not more often than this: garbage tokens cannot hammer the store."""

REFRESH_AFTER = 10.0
"""Keys older than this are reread before signing, so a rotation by another server is
followed well within LEEWAY."""

REGISTERED = ("iss", "aud", "sub", "iat", "nbf", "exp", "jti")

SigningKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


class SigningKeyStore(Protocol):
    """The part of `IdentityStore` that keeps signing keys (records oldest first)."""

    async def signing_keys(self) -> list[SigningKeyRecord]: ...

    async def add_signing_key(self, key: SigningKeyRecord,
                              audit: Sequence[AuditEntry] = ()) -> None: ...

    async def retire_signing_key(self, kid: str, at: float) -> None: ...


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A signed access token, its id (for audit entries) and when it expires."""

    token: str
    jti: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class _Key:
    kid: str
    algorithm: str
    private: SigningKey
    jwk: dict[str, Any]
    retired_at: float | None


class AccessTokens:
    """Issues and verifies access tokens for one issuer and audience. `clock` gives the
    time in seconds since the epoch (tests pass their own)."""

    def __init__(self, store: SigningKeyStore, issuer: str, audience: str,
                 lifetime: float = LIFETIME, algorithm: str = "EdDSA",
                 clock: Callable[[], float] = time.time, leeway: float = LEEWAY) -> None:
        if algorithm not in ALGORITHMS:
            raise ConfigError(f"access token algorithm {algorithm!r} is not supported",
                              hint=f"choose one of {', '.join(ALGORITHMS)}")
        self._store = store
        self.issuer = issuer
        self.audience = audience
        self.lifetime = lifetime
        self.algorithm = algorithm
        self.leeway = leeway
        self._clock = clock
        self._keys: dict[str, _Key] = {}
        self._loaded_at = -math.inf
        self._lock = asyncio.Lock()

    async def issue(self, subject: str, claims: Mapping[str, Any] | None = None
                    ) -> IssuedToken:
        """A token for `subject` carrying `claims` beside the registered ones (which they
        may not replace). Makes the first key when the store has none."""
        extra = dict(claims or {})
        if clash := sorted(set(extra) & set(REGISTERED)):
            raise ValueError(f"claims {clash} are set by the issuer")
        key = await self._current_key()
        now = int(self._clock())
        jti = secrets.token_urlsafe(16)
        expires_at = now + int(self.lifetime)
        payload = {**extra, "iss": self.issuer, "aud": self.audience, "sub": subject,
                   "iat": now, "nbf": now, "exp": expires_at, "jti": jti}
        token = jwt.encode(payload, key.private, algorithm=key.algorithm,
                           headers={"kid": key.kid, "typ": TOKEN_TYPE})
        return IssuedToken(token, jti, expires_at)

    async def rotate(self) -> str:
        """Make a new signing key and retire the others; returns the new key's id. The new
        key is stored before the old are retired, so a key always exists to sign with."""
        now = self._clock()
        record = _new_record(self.algorithm, now)
        await self._store.add_signing_key(record, audit=[
            audit.entry("signing_key.rotate", f"signing_key:{record.kid}")])
        async with self._lock:
            await self._load()
            for key in list(self._keys.values()):
                if key.retired_at is None and key.kid != record.kid:
                    await self._store.retire_signing_key(key.kid, now)
            await self._load()
        return record.kid

    async def jwks(self) -> dict[str, Any]:
        """The public keys that verify tokens now (RFC 7517): current and recently
        retired ones."""
        keys = await self._fresh(REFRESH_AFTER)
        return {"keys": [dict(k.jwk) for k in keys.values() if self._live(k)]}

    async def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid token; `Unauthorized` saying what is wrong otherwise."""
        header = _header(token)
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS:
            raise Unauthorized(f"access token algorithm {alg!r} is not accepted")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("access token has no key id (kid)")
        if header.get("typ") != TOKEN_TYPE:
            raise Unauthorized("not an access token (its typ is not at+jwt)")
        key = await self._verifying_key(kid)
        if alg != key.algorithm:
            raise Unauthorized(f"access token algorithm {alg!r} does not match its key")
        claims = self._decode(token, key)
        self._check_times(claims)
        return claims

    async def _current_key(self) -> _Key:
        keys = await self._fresh(REFRESH_AFTER)
        # The store lists keys oldest first: the last unretired one is the newest.
        current = [k for k in keys.values() if k.retired_at is None][-1:]
        if current and current[0].algorithm == self.algorithm:
            return current[0]
        with audit.acting_as(audit.SYSTEM_ACTING):  # the server's own doing, not the caller's
            kid = await self.rotate()
        return self._keys[kid]

    async def _verifying_key(self, kid: str) -> _Key:
        keys = self._keys if kid in self._keys else await self._fresh(RELOAD_AFTER)
        key = keys.get(kid)
        if key is None:
            raise Unauthorized("access token was signed by an unknown key")
        if not self._live(key):
            raise Unauthorized("access token was signed by a key no longer in use")
        return key

    async def _fresh(self, max_age: float) -> dict[str, _Key]:
        """The keys, reread from the store when the copy is older than `max_age`."""
        async with self._lock:
            if self._clock() - self._loaded_at >= max_age:
                await self._load()
        return self._keys

    async def _load(self) -> None:
        records = await self._store.signing_keys()
        self._keys = {r.kid: _load_key(r) for r in records if r.algorithm in ALGORITHMS}
        self._loaded_at = self._clock()

    def _live(self, key: _Key) -> bool:
        """Whether `key` still verifies: current, or retired so recently that tokens it
        signed may not have expired yet."""
        return key.retired_at is None or (
            self._clock() <= key.retired_at + self.lifetime + self.leeway)

    def _decode(self, token: str, key: _Key) -> dict[str, Any]:
        """Signature, issuer, audience and the presence of every registered claim; times
        are checked with our own clock (`_check_times`)."""
        options: Options = {"require": list(REGISTERED), "verify_exp": False,
                        "verify_nbf": False, "verify_iat": False}
        try:
            return jwt.decode(token, key.private.public_key(), algorithms=[key.algorithm],
                              issuer=self.issuer, audience=self.audience, options=options)
        except jwt.InvalidSignatureError:
            raise Unauthorized("access token signature is not valid") from None
        except jwt.MissingRequiredClaimError as e:
            raise Unauthorized(f"access token has no {e.claim!r} claim") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("access token comes from another issuer") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("access token is meant for another audience") from None
        except jwt.DecodeError:
            raise Unauthorized("access token is malformed") from None
        except jwt.InvalidTokenError as e:
            raise Unauthorized(f"access token is not valid: {e}") from None

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self._clock()
        exp, nbf, iat = (_time_claim(claims, name) for name in ("exp", "nbf", "iat"))
        if now >= exp + self.leeway:
            raise Unauthorized("access token has expired", hint="refresh it or log in again")
        if nbf > now + self.leeway:
            raise Unauthorized("access token is not valid yet")
        if iat > now + self.leeway:
            raise Unauthorized("access token was issued in the future")


def _header(token: str) -> dict[str, Any]:
    try:
        return jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise Unauthorized("access token is malformed") from None


def _time_claim(claims: Mapping[str, Any], name: str) -> float:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthorized(f"access token claim {name!r} is not a time")
    return float(value)


def _new_record(algorithm: str, now: float) -> SigningKeyRecord:
    """A fresh key pair as a store record: the private key as unencrypted PKCS8 PEM (the
    store is the secret), the public one as a JWK."""
    private = _generate(algorithm)
    pem = private.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    kid = secrets.token_urlsafe(12)
    return SigningKeyRecord(kid=kid, algorithm=algorithm, private_pem=pem,
                            public_jwk=_public_jwk(kid, algorithm, private), created_at=now)


def _generate(algorithm: str) -> SigningKey:
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def _load_key(record: SigningKeyRecord) -> _Key:
    """A stored key, checked to be of the kind its algorithm needs."""
    private = _fitting(record.algorithm,
                       serialization.load_pem_private_key(record.private_pem.encode(), None))
    if private is None:
        raise StoreError(f"signing key {record.kid!r} is not a {record.algorithm} key")
    return _Key(record.kid, record.algorithm, private,
                _public_jwk(record.kid, record.algorithm, private), record.retired_at)


def _fitting(algorithm: str, key: PrivateKeyTypes) -> SigningKey | None:
    if algorithm == "EdDSA" and isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    if algorithm == "ES256" and isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(
            key.curve, ec.SECP256R1):
        return key
    return None


def _public_jwk(kid: str, algorithm: str, private: SigningKey) -> dict[str, Any]:
    """The public half as a JWK (derived from the private key, so the JWKS always matches
    what verifies), with the members RFC 7517 clients look for."""
    jwk = jwt.get_algorithm_by_name(algorithm).to_jwk(private.public_key(), as_dict=True)
    if not isinstance(jwk, dict):
        raise TypeError("PyJWT returned a JWK that is not a dict")
    return {**jwk, "kid": kid, "alg": algorithm, "use": "sig"}
