"""The relying party of an OpenID Connect login (authorization code flow with PKCE): the
provider's metadata from discovery, the authorization request, the code exchange, and the
checks of the ID token (signature by the provider's JWKS, issuer, audience, expiry, nonce).

Authlib builds and parses the OAuth 2.0 messages and validates the ID token's claims;
joserfc (Authlib's JOSE library) verifies its signature; httpx carries the requests."""
from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from authlib.oidc.discovery import OpenIDProviderMetadata, get_well_known_url
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from baseshift.core.errors import BadRequest, BaseShiftError, Unauthorized
from baseshift.core.stash import StashKey

from .oidc_config import OidcSettings

METADATA_SECONDS = 3600.0
"""How long discovered metadata and keys are reused; an ID token signed by a key not in the
cached JWKS makes one fresh read at once (the provider rotated)."""
LEEWAY = 60
SIGNING_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                "ES256", "ES384", "ES512", "EdDSA"})
"""Asymmetric algorithms only: an ID token MACed with the client secret (HS256) or unsigned
(`none`) is refused whatever the provider announces."""


class ProviderUnavailable(BaseShiftError):
    """The identity provider could not be reached or answered something unusable."""

    code = "auth.oidc-provider"
    status = 502


class LoginRefused(Unauthorized):
    """The provider's answer does not prove a sign-in at this server."""

    code = "auth.oidc-refused"


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """What discovery tells about the provider. `issuer` is its own spelling (a trailing
    slash kept): ID tokens carry exactly that."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    algorithms: tuple[str, ...]
    auth_method: str


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """Where to send the browser, and the secrets the callback must match."""

    url: str
    state: str
    nonce: str
    verifier: str


class RelyingParty:
    """This server as a client of one OpenID provider."""

    def __init__(self, settings: OidcSettings, http: httpx.AsyncClient,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.http = http
        self.clock = clock
        self._info: tuple[float, ProviderInfo] | None = None
        self._keys: KeySet | None = None

    async def info(self) -> ProviderInfo:
        """The provider's metadata (OpenID Connect Discovery 1.0), cached."""
        if self._info is not None and self.clock() - self._info[0] < METADATA_SECONDS:
            return self._info[1]
        document = await self._get_json(get_well_known_url(self.settings.issuer, external=True))
        try:
            metadata = OpenIDProviderMetadata(document)
            metadata.validate()
        except ValueError as exc:
            raise ProviderUnavailable(f"the provider's metadata is not valid: {exc}") from None
        if str(document["issuer"]).rstrip("/") != self.settings.issuer:
            raise ProviderUnavailable(
                f"the provider calls itself {document['issuer']!r}, not the configured "
                f"issuer {self.settings.issuer!r}", hint="set plugins.oidc.issuer to it")
        info = ProviderInfo(
            str(document["issuer"]), document["authorization_endpoint"],
            document["token_endpoint"], document["jwks_uri"], document.get("userinfo_endpoint"),
            tuple(a for a in document.get("id_token_signing_alg_values_supported", ["RS256"])
                  if a in SIGNING_ALGORITHMS),
            _auth_method(document.get("token_endpoint_auth_methods_supported")))
        self._info, self._keys = (self.clock(), info), None
        return info

    async def authorization_request(self, redirect_uri: str) -> AuthorizationRequest:
        """A new authorization request: fresh state, nonce and PKCE verifier (S256)."""
        info = await self.info()
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        url = prepare_grant_uri(
            info.authorization_endpoint, self.settings.client_id, "code", redirect_uri,
            " ".join(self.settings.scopes), state, nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier), code_challenge_method="S256")
        return AuthorizationRequest(url, state, nonce, verifier)

    async def finish(self, params: Mapping[str, str], request: AuthorizationRequest,
                     redirect_uri: str) -> dict[str, Any]:
        """The user's claims once the provider's answer to `request` (the callback's query
        parameters) proves a sign-in: LoginRefused saying why it does not."""
        check_response(params, request.state, (await self.info()).issuer)
        tokens = await self._exchange(params["code"], request.verifier, redirect_uri)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise LoginRefused("the provider answered without an ID token",
                               hint="the 'openid' scope must be allowed for this client")
        claims = await self.verify_id_token(id_token, request.nonce,
                                            str(tokens.get("access_token") or ""))
        return await self._with_userinfo(claims, tokens.get("access_token"))

    async def _exchange(self, code: str, verifier: str, redirect_uri: str) -> dict[str, Any]:
        info = await self.info()
        body = prepare_token_request("authorization_code", code=code,
                                     redirect_uri=redirect_uri, code_verifier=verifier)
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "Accept": "application/json"}
        auth = ClientAuth(self.settings.client_id, self.settings.client_secret,
                          info.auth_method)
        url, headers, body = auth.prepare("POST", info.token_endpoint, headers, body)
        response = await self._request("POST", url, headers=headers, content=body)
        answer = _json(response)
        if response.status_code != 200 or "error" in answer:
            raise LoginRefused(
                f"the provider refused the sign-in code: {answer.get('error', 'no error')}"
                + (f" ({answer['error_description']})"
                   if answer.get("error_description") else ""),
                hint="a code is good once and for a few minutes: sign in again")
        return answer

    async def verify_id_token(self, id_token: str, nonce: str,
                              access_token: str = "") -> dict[str, Any]:
        """The claims of an ID token this provider signed for this client, for the
        authorization request with `nonce`, still valid (OpenID Connect Core 3.1.3.7)."""
        info = await self.info()
        if not info.algorithms:
            raise ProviderUnavailable("the provider signs ID tokens with no algorithm "
                                      f"accepted here ({', '.join(sorted(SIGNING_ALGORITHMS))})")
        token = await self._decoded(id_token, info)
        options: dict[str, Any] = {"iss": {"essential": True, "value": info.issuer},
                                   "aud": {"essential": True, "value": self.settings.client_id}}
        claims = CodeIDToken(token.claims, token.header, options,
                             {"nonce": nonce, "client_id": self.settings.client_id,
                              "access_token": access_token or None})
        try:
            claims.validate(now=int(self.clock()), leeway=LEEWAY)
        except JoseError as exc:
            raise LoginRefused(f"the ID token is not valid: {_why(exc)}") from None
        return dict(claims)

    async def _decoded(self, id_token: str, info: ProviderInfo) -> jwt.Token:
        for fresh in (False, True):
            keys = await self._key_set(info, fresh)
            try:
                return jwt.decode(id_token, keys, algorithms=list(info.algorithms))
            except (ValueError, JoseError) as exc:
                if fresh or not _unknown_key(exc):
                    raise LoginRefused(f"the ID token is not valid: {_why(exc)}") from None
        raise AssertionError("unreachable")

    async def _key_set(self, info: ProviderInfo, fresh: bool) -> KeySet:
        if self._keys is None or fresh:
            document = await self._get_json(info.jwks_uri)
            try:
                self._keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
            except (ValueError, JoseError) as exc:
                raise ProviderUnavailable(f"the provider's JWKS is not valid: {exc}") from None
        return self._keys

    async def _with_userinfo(self, claims: dict[str, Any], access_token: Any
                             ) -> dict[str, Any]:
        """The ID token's claims, completed from the UserInfo endpoint when it lacks those
        the configuration reads (many providers put groups only there)."""
        wanted = (self.settings.username_claim, self.settings.roles_claim)
        info = await self.info()
        if all(k in claims for k in wanted) or not info.userinfo_endpoint \
                or not isinstance(access_token, str):
            return claims
        response = await self._request("GET", info.userinfo_endpoint,
                                       headers={"Authorization": f"Bearer {access_token}",
                                                "Accept": "application/json"})
        extra = _json(response)
        if response.status_code != 200:
            raise ProviderUnavailable(f"the provider's UserInfo endpoint answered "
                                      f"{response.status_code}")
        if extra.get("sub") != claims["sub"]:  # Core 5.3.2: it must be the same user
            raise LoginRefused("the provider's UserInfo is about another user")
        return {**extra, **claims}

    async def _get_json(self, url: str) -> dict[str, Any]:
        response = await self._request("GET", url, headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise ProviderUnavailable(f"{url} answered {response.status_code}")
        return _json(response)

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self.http.request(method, url, timeout=self.settings.timeout,
                                           follow_redirects=False, **kwargs)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"the identity provider cannot be reached: "
                                      f"{type(exc).__name__}",
                                      hint=f"is {self.settings.issuer} up?") from None


def check_response(params: Mapping[str, str], state: str, issuer: str) -> None:
    """Refuse an authorization response that is an error, answers another request (state),
    comes from another provider (RFC 9207 `iss`), or carries no code."""
    if not hmac.compare_digest(params.get("state", ""), state):
        raise BadRequest("this sign-in answers a request this browser did not make",
                         hint="start the sign-in again from the sign-in page")
    if "error" in params:
        raise LoginRefused(f"the provider did not sign you in: {params['error']}"
                           + (f" ({params['error_description']})"
                              if params.get("error_description") else ""))
    if "iss" in params and params["iss"] != issuer:
        raise LoginRefused("the sign-in answer comes from another identity provider")
    if not params.get("code"):
        raise BadRequest("the provider's answer carries no code")


def _auth_method(supported: Any) -> str:
    """How to authenticate at the token endpoint: HTTP Basic unless only POST is offered."""
    if isinstance(supported, list) and "client_secret_basic" not in supported \
            and "client_secret_post" in supported:
        return "client_secret_post"
    return "client_secret_basic"


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ProviderUnavailable(f"{response.url} answered {response.status_code} without "
                                  "a JSON object")
    return value


def _unknown_key(exc: Exception) -> bool:
    return "key" in str(exc).lower() or type(exc).__name__ == "MissingKeyError"


def _why(exc: Exception) -> str:
    return getattr(exc, "description", None) or str(exc) or type(exc).__name__


OIDC: StashKey[RelyingParty] = StashKey("oidc")
"""The configured provider's relying party, made when a server starts (plugins/auth/oidc.py)."""
