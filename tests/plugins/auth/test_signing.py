"""plugins/auth/signing.py: access tokens round trip, key rotation, the JWKS, and the known
attacks on JWT verification (alg none, key confusion, forged and replayed keys).

The identity stores are not ready yet, so a tiny in-memory stand-in keeps the signing keys
(the three methods AccessTokens uses); the clock is moved by hand."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from baseshift.core.audit import Acting, AuditEntry, acting_as
from baseshift.core.errors import ConfigError, Unauthorized
from baseshift.core.identity import SigningKeyRecord
from baseshift.plugins.auth.signing import LEEWAY, RELOAD_AFTER, AccessTokens

T0 = 1_750_000_000.0
ISSUER, AUDIENCE = "https://flows.example.org", "baseshift"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class KeyStore:
    """The signing-key part of an IdentityStore, in memory; counts reads."""

    def __init__(self) -> None:
        self.records: list[SigningKeyRecord] = []
        self.reads = 0
        self.audit: list[AuditEntry] = []

    async def signing_keys(self) -> list[SigningKeyRecord]:
        self.reads += 1
        return [dataclasses.replace(r, public_jwk=dict(r.public_jwk)) for r in self.records]

    async def add_signing_key(self, key: SigningKeyRecord,
                              audit: Sequence[AuditEntry] = ()) -> None:
        self.records.append(dataclasses.replace(key))
        self.audit.extend(audit)

    async def retire_signing_key(self, kid: str, at: float) -> None:
        for record in self.records:
            if record.kid == kid and record.retired_at is None:
                record.retired_at = at


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> KeyStore:
    return KeyStore()


@pytest.fixture
def tokens(store: KeyStore, clock: Clock) -> AccessTokens:
    return AccessTokens(store, ISSUER, AUDIENCE, clock=clock)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    decode = lambda s: json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))  # noqa: E731
    return decode(header), decode(payload), signature


def claims_now(clock: Clock, **changes: Any) -> dict[str, Any]:
    now = int(clock())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "u1", "iat": now, "nbf": now,
            "exp": now + 900, "jti": "j1", **changes}


def private_key(store: KeyStore, index: int = -1) -> ed25519.Ed25519PrivateKey:
    key = serialization.load_pem_private_key(store.records[index].private_pem.encode(), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key


def sign(store: KeyStore, payload: dict[str, Any], **header: Any) -> str:
    """A token signed with the store's real current key: only what the test changes is
    wrong with it."""
    headers = {"kid": store.records[-1].kid, "typ": "at+jwt", **header}
    return jwt.encode(payload, private_key(store), algorithm="EdDSA", headers=headers)


async def refused(tokens: AccessTokens, token: str, match: str) -> None:
    with pytest.raises(Unauthorized, match=match) as caught:
        await tokens.verify(token)
    assert caught.value.status == 401 and caught.value.code == "auth.unauthorized"


async def test_an_issued_token_verifies_with_its_claims(tokens: AccessTokens,
                                                        store: KeyStore) -> None:
    issued = await tokens.issue("u1", {"name": "alice", "roles": ["viewer"]})
    claims = await tokens.verify(issued.token)
    assert claims["sub"] == "u1" and claims["name"] == "alice"
    assert claims["roles"] == ["viewer"]
    assert (claims["iss"], claims["aud"], claims["jti"]) == (ISSUER, AUDIENCE, issued.jti)
    assert claims["iat"] == claims["nbf"] == int(T0)
    assert claims["exp"] == issued.expires_at == int(T0) + 900
    header, _, _ = segments(issued.token)
    assert header == {"alg": "EdDSA", "kid": store.records[0].kid, "typ": "at+jwt"}


async def test_the_first_token_makes_the_one_key(tokens: AccessTokens,
                                                 store: KeyStore) -> None:
    assert store.records == []
    first = await tokens.issue("u1")
    second = await tokens.issue("u2")
    assert len(store.records) == 1
    assert store.records[0].private_pem.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS8
    assert segments(first.token)[0]["kid"] == segments(second.token)[0]["kid"]
    assert first.jti != second.jti


async def test_the_jwks_holds_public_keys_only(tokens: AccessTokens, store: KeyStore) -> None:
    issued = await tokens.issue("u1")
    jwks = await tokens.jwks()
    [key] = jwks["keys"]
    assert key == {"kty": "OKP", "crv": "Ed25519", "x": key["x"],
                   "kid": store.records[0].kid, "alg": "EdDSA", "use": "sig"}
    assert store.records[0].public_jwk == key
    # what another verifier does with it: the JWKS alone verifies the token
    verifier = jwt.PyJWKSet.from_dict(jwks)[key["kid"]]
    claims = jwt.decode(issued.token, verifier.key, algorithms=["EdDSA"], audience=AUDIENCE,
                        options={"verify_exp": False, "verify_iat": False,
                                 "verify_nbf": False})
    assert claims["sub"] == "u1"


async def test_es256_by_configuration(store: KeyStore, clock: Clock) -> None:
    tokens = AccessTokens(store, ISSUER, AUDIENCE, algorithm="ES256", clock=clock)
    issued = await tokens.issue("u1")
    assert segments(issued.token)[0]["alg"] == "ES256"
    assert (await tokens.verify(issued.token))["sub"] == "u1"
    [key] = (await tokens.jwks())["keys"]
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")
    assert {"x", "y"} <= set(key) and "d" not in key


@pytest.mark.parametrize("algorithm", ["HS256", "none", "RS256", "ES512"])
def test_other_algorithms_are_a_configuration_error(store: KeyStore,
                                                    algorithm: str) -> None:
    with pytest.raises(ConfigError, match=algorithm):
        AccessTokens(store, ISSUER, AUDIENCE, algorithm=algorithm)


async def test_a_change_of_algorithm_rotates_to_a_key_for_it(store: KeyStore,
                                                            clock: Clock) -> None:
    await AccessTokens(store, ISSUER, AUDIENCE, clock=clock).issue("u1")
    tokens = AccessTokens(store, ISSUER, AUDIENCE, algorithm="ES256", clock=clock)
    issued = await tokens.issue("u1")
    assert segments(issued.token)[0]["alg"] == "ES256"
    assert [r.algorithm for r in store.records] == ["EdDSA", "ES256"]
    assert store.records[0].retired_at == T0


async def test_registered_claims_cannot_be_overridden(tokens: AccessTokens) -> None:
    with pytest.raises(ValueError, match="sub"):
        await tokens.issue("u1", {"sub": "admin"})


async def test_rotation_keeps_old_tokens_valid_until_they_expire(
        tokens: AccessTokens, store: KeyStore, clock: Clock) -> None:
    with acting_as(Acting("ann")):  # a sign-in, then an administrator's rotation
        old = await tokens.issue("u1")
        clock.now += 100
        new_kid = await tokens.rotate()
    new = await tokens.issue("u1")
    assert segments(new.token)[0]["kid"] == new_kid != segments(old.token)[0]["kid"]
    assert store.records[0].retired_at == T0 + 100
    assert [(e.action, e.resource) for e in store.audit] == [  # the first key, the new one
        ("signing_key.rotate", f"signing_key:{store.records[0].kid}"),
        ("signing_key.rotate", f"signing_key:{new_kid}")]
    assert [e.actor for e in store.audit] == ["system", "ann"]  # the first: made when needed
    assert (await tokens.verify(old.token))["sub"] == "u1"
    assert len((await tokens.jwks())["keys"]) == 2

    clock.now = old.expires_at + LEEWAY
    await refused(tokens, old.token, "expired")
    assert (await tokens.verify(new.token))["sub"] == "u1"

    clock.now = T0 + 100 + 900 + LEEWAY + 1  # the old key's last token has expired
    assert [k["kid"] for k in (await tokens.jwks())["keys"]] == [new_kid]
    # a token freshly minted with the retired key (say, from an old backup) is refused
    await refused(tokens, sign(store, claims_now(clock), kid=store.records[0].kid),
                  "no longer in use")


async def test_a_key_rotated_by_another_server_is_picked_up(
        store: KeyStore, clock: Clock) -> None:
    here = AccessTokens(store, ISSUER, AUDIENCE, clock=clock)
    there = AccessTokens(store, ISSUER, AUDIENCE, clock=clock)
    await here.verify((await there.issue("u1")).token)
    clock.now += RELOAD_AFTER
    await there.rotate()
    issued = await there.issue("u2")
    assert (await here.verify(issued.token))["sub"] == "u2"


async def test_unknown_kids_reload_the_keys_at_most_every_few_seconds(
        tokens: AccessTokens, store: KeyStore, clock: Clock) -> None:
    await tokens.verify((await tokens.issue("u1")).token)
    reads = store.reads
    clock.now += RELOAD_AFTER
    for n in range(5):
        await refused(tokens, sign(store, claims_now(clock), kid=f"garbage-{n}"),
                      "unknown key")
    assert store.reads == reads + 1
    clock.now += RELOAD_AFTER
    await refused(tokens, sign(store, claims_now(clock), kid="garbage"), "unknown key")
    assert store.reads == reads + 2


async def test_known_keys_verify_without_reading_the_store(
        tokens: AccessTokens, store: KeyStore, clock: Clock) -> None:
    issued = await tokens.issue("u1")
    reads = store.reads
    clock.now += 60
    await tokens.verify(issued.token)
    assert store.reads == reads


async def test_leeway_forgives_a_little_clock_difference(
        tokens: AccessTokens, store: KeyStore, clock: Clock) -> None:
    await tokens.issue("u1")
    ahead = sign(store, claims_now(clock, iat=int(T0 + LEEWAY), nbf=int(T0 + LEEWAY)))
    assert (await tokens.verify(ahead))["sub"] == "u1"
    late = sign(store, claims_now(clock, exp=int(T0 - LEEWAY + 1)))
    assert (await tokens.verify(late))["sub"] == "u1"


# The attacks. Each token below is wrong in one way only.


async def test_alg_none_is_refused(tokens: AccessTokens, store: KeyStore,
                                   clock: Clock) -> None:
    await tokens.issue("u1")
    header = {"alg": "none", "kid": store.records[0].kid, "typ": "at+jwt"}
    token = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims_now(clock)).encode())}."
    await refused(tokens, token, "algorithm 'none' is not accepted")


@pytest.mark.parametrize("secret", ["pem", "x"])
async def test_hs256_with_the_public_key_as_secret_is_refused(
        tokens: AccessTokens, store: KeyStore, clock: Clock, secret: str) -> None:
    """Key confusion: an HMAC made with the published public key (as PEM, or the raw JWK
    `x`) as its secret, which a verifier taking the algorithm from the token accepts."""
    await tokens.issue("u1")
    public = private_key(store).public_key()
    key = (public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
           if secret == "pem" else store.records[0].public_jwk["x"].encode())
    header = {"alg": "HS256", "kid": store.records[0].kid, "typ": "at+jwt"}
    signing_input = (f"{b64(json.dumps(header).encode())}."
                     f"{b64(json.dumps(claims_now(clock)).encode())}")
    mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    await refused(tokens, f"{signing_input}.{b64(mac)}", "algorithm 'HS256' is not accepted")


async def test_an_algorithm_other_than_the_keys_is_refused(
        tokens: AccessTokens, store: KeyStore, clock: Clock) -> None:
    await tokens.issue("u1")
    other = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(claims_now(clock), other, algorithm="ES256",
                       headers={"kid": store.records[0].kid, "typ": "at+jwt"})
    await refused(tokens, token, "'ES256' does not match its key")


async def test_an_expired_token_is_refused(tokens: AccessTokens, clock: Clock) -> None:
    issued = await tokens.issue("u1")
    clock.now = issued.expires_at + LEEWAY - 1
    await tokens.verify(issued.token)
    clock.now += 1
    await refused(tokens, issued.token, "expired")


async def test_a_token_not_valid_yet_is_refused(tokens: AccessTokens, store: KeyStore,
                                                clock: Clock) -> None:
    await tokens.issue("u1")
    await refused(tokens, sign(store, claims_now(clock, nbf=int(T0 + 3600))), "not valid yet")
    await refused(tokens, sign(store, claims_now(clock, iat=int(T0 + 3600))), "in the future")


async def test_a_tampered_payload_is_refused(tokens: AccessTokens) -> None:
    issued = await tokens.issue("u1")
    header, payload, signature = issued.token.split(".")
    claims = segments(issued.token)[1] | {"sub": "admin"}
    forged = f"{header}.{b64(json.dumps(claims).encode())}.{signature}"
    await refused(tokens, forged, "signature is not valid")


async def test_an_unknown_kid_is_refused(tokens: AccessTokens, store: KeyStore,
                                         clock: Clock) -> None:
    await tokens.issue("u1")
    await refused(tokens, sign(store, claims_now(clock), kid="no-such-key"), "unknown key")


async def test_a_token_without_kid_is_refused(tokens: AccessTokens, store: KeyStore,
                                              clock: Clock) -> None:
    await tokens.issue("u1")
    token = jwt.encode(claims_now(clock), private_key(store), algorithm="EdDSA",
                       headers={"typ": "at+jwt"})
    await refused(tokens, token, "no key id")


async def test_a_token_of_another_type_is_refused(tokens: AccessTokens, store: KeyStore,
                                                  clock: Clock) -> None:
    await tokens.issue("u1")
    await refused(tokens, sign(store, claims_now(clock), typ="JWT"), "not an access token")


async def test_another_issuer_or_audience_is_refused(tokens: AccessTokens, store: KeyStore,
                                                     clock: Clock) -> None:
    await tokens.issue("u1")
    await refused(tokens, sign(store, claims_now(clock, iss="https://evil.example")),
                  "another issuer")
    await refused(tokens, sign(store, claims_now(clock, aud="another-api")),
                  "another audience")


@pytest.mark.parametrize("claim", ["iss", "aud", "sub", "iat", "nbf", "exp", "jti"])
async def test_every_registered_claim_is_required(tokens: AccessTokens, store: KeyStore,
                                                  clock: Clock, claim: str) -> None:
    await tokens.issue("u1")
    payload = claims_now(clock)
    del payload[claim]
    await refused(tokens, sign(store, payload), f"no '{claim}' claim")


async def test_a_time_claim_that_is_not_a_number_is_refused(
        tokens: AccessTokens, store: KeyStore, clock: Clock) -> None:
    await tokens.issue("u1")
    await refused(tokens, sign(store, claims_now(clock, exp="tomorrow")), "'exp' is not a time")


async def test_another_key_with_the_same_kid_is_refused(
        tokens: AccessTokens, store: KeyStore, clock: Clock) -> None:
    await tokens.issue("u1")
    impostor = ed25519.Ed25519PrivateKey.generate()
    token = jwt.encode(claims_now(clock), impostor, algorithm="EdDSA",
                       headers={"kid": store.records[0].kid, "typ": "at+jwt"})
    await refused(tokens, token, "signature is not valid")


@pytest.mark.parametrize(("token", "match"), [
    ("", "malformed"), ("garbage", "malformed"), ("a.b.c", "malformed"), ("...", "malformed"),
    ("e30.e30.", "algorithm None"),
])
async def test_malformed_tokens_are_refused(tokens: AccessTokens, token: str,
                                            match: str) -> None:
    await tokens.issue("u1")
    await refused(tokens, token, match)
