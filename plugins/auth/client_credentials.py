"""`POST /api/v1/auth/token`: the OAuth 2.0 token endpoint for machine clients, with the
client-credentials grant only (RFC 6749 4.4).

Authlib's authorization server does the protocol: client authentication (HTTP Basic or
`client_id`/`client_secret` in the form), the grant-type dispatch, and the error answers
of RFC 6749 5.2 (`invalid_client` with `WWW-Authenticate`, `unsupported_grant_type`, ...).
It is synchronous, so it runs in a worker thread and calls back into the event loop for
what needs the store: checking the secret and signing the access token."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

import anyio
import anyio.from_thread
from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidRequestError, InvalidScopeError, OAuth2Error
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from baseshift.core import audit
from baseshift.core.access import Actor
from baseshift.core.errors import Unauthorized
from baseshift.web.access import public
from baseshift.web.openapi import operation
from baseshift.web.requests import baseshift_of
from baseshift.web.responses import JSONResponse
from baseshift.web.schemas import obj

from .http import auth_of
from .logins import Logins
from .oauth_clients import TOKEN_PATH, client_claims
from .tokens import API_TOKEN_PREFIX, same

METHODS = ["client_secret_basic", "client_secret_post"]
FORM = "application/x-www-form-urlencoded"
PARAMETERS = frozenset({"grant_type", "scope", "client_id", "client_secret"})


class _Request(OAuth2Request):  # type: ignore[misc]  # Authlib has no type information
    """A token request as Authlib reads it: the form is parsed beforehand."""

    def __init__(self, uri: str, headers: Mapping[str, str], form: dict[str, str]) -> None:
        super().__init__("POST", uri, headers=headers)
        self.payload = BasicOAuth2Payload(form)
        self._form = form

    @property
    def form(self) -> dict[str, str]:
        return self._form


class ApiTokenClient(ClientMixin):  # type: ignore[misc]
    """A client: an API token, known by its id; its secret is the token itself."""

    def __init__(self, client_id: str, logins: Logins) -> None:
        self.client_id = client_id
        self.logins = logins
        self.actor: Actor | None = None

    def get_client_id(self) -> str:
        return self.client_id

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in METHODS and endpoint == "token"

    def check_client_secret(self, client_secret: str) -> bool:
        if not client_secret.startswith(API_TOKEN_PREFIX):
            return False
        try:
            actor = anyio.from_thread.run(self.logins.actor_for_api_token, client_secret)
        except Unauthorized:  # unknown, revoked or expired token, or disabled user
            return False
        if not same(actor.id, self.client_id):
            return False
        self.actor = actor
        return True

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"

    def get_allowed_scope(self, scope: str | None) -> str:
        return ""


class _Grant(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = METHODS


class TokenEndpoint(AuthorizationServer):  # type: ignore[misc]
    """Authlib's authorization server over the API tokens of `logins`."""

    def __init__(self, logins: Logins) -> None:
        super().__init__()
        self.logins = logins
        self.register_grant(_Grant)
        self.register_token_generator("default", self._access_token)

    def query_client(self, client_id: str) -> ApiTokenClient | None:
        return ApiTokenClient(client_id, self.logins) if client_id else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Nothing to keep: the access token is a signed JWT, checked against its API
        token whenever it is used."""

    def validate_requested_scope(self, scope: str | None) -> None:
        if scope:
            raise InvalidScopeError("a client gets the roles of its API token: ask without "
                                    "scope, or make a token with fewer roles")

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]
                        ) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, headers

    def _access_token(self, grant_type: str, client: ApiTokenClient, **_: Any
                      ) -> dict[str, Any]:
        assert client.actor is not None  # authenticated before a token is made
        owner = anyio.from_thread.run(self.logins.accounts.user, client.actor.person)
        issued = anyio.from_thread.run(self.logins.tokens.issue, client.client_id,
                                       client_claims(client.actor, owner.id))
        return {"access_token": issued.token, "token_type": "Bearer",
                "expires_in": int(self.logins.tokens.lifetime)}

    def answer(self, request: OAuth2Request) -> tuple[int, Any, list[tuple[str, str]]]:
        """The status, JSON body and headers answering a token request."""
        answer: tuple[int, Any, list[tuple[str, str]]] = self.create_token_response(request)
        return answer


def _form(content_type: str, body: bytes) -> dict[str, str]:
    """The request's parameters; InvalidRequestError for another content type or a
    repeated parameter (RFC 6749 3.2; unknown ones are ignored, repeated or not)."""
    if content_type.split(";")[0].strip().lower() != FORM:
        raise InvalidRequestError(f"send the parameters as {FORM}")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequestError("the form is not valid UTF-8 URL-encoded text") from None
    form = dict(pairs)
    names = [name for name, _ in pairs if name in PARAMETERS]
    if len(names) != len(set(names)):
        raise InvalidRequestError("a parameter is repeated")
    if not form.get("grant_type"):
        raise InvalidRequestError("the grant_type parameter is missing")
    return form


def _checked(request: Request, form: dict[str, str]) -> None:
    """Refuse a client authenticating two ways at once (RFC 6749 2.3)."""
    basic = request.headers.get("authorization", "").lower().startswith("basic ")
    if basic and ("client_secret" in form):
        raise InvalidRequestError("authenticate with HTTP Basic or with client_secret in "
                                  "the form, not both")


def _response(status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
    response = JSONResponse(body, status_code=status)
    for name, value in headers:
        if name.lower() != "content-type":
            response.headers.append(name, value)
    return response


STRING = {"type": "string"}
TOKEN_REQUEST = obj({"grant_type": {"enum": ["client_credentials"]}, "client_id": STRING,
                     "client_secret": STRING}, ("grant_type",))
ACCESS_TOKEN = obj({"access_token": STRING, "token_type": {"enum": ["Bearer"]},
                    "expires_in": {"type": "integer"}},
                   ("access_token", "token_type", "expires_in"))
OAUTH_ERROR = obj({"error": STRING, "error_description": STRING, "error_uri": STRING},
                  ("error",))
"""RFC 6749 5.2: what a refused token request answers (not a problem document: OAuth
clients read these fields)."""


@public("the client's credentials in the request are what it trades for an access token")
@operation("OAuth 2.0 token endpoint (client-credentials grant): an API token's id and "
           "secret, by HTTP Basic or form fields, for a short-lived access token",
           tags=["auth"], request=TOKEN_REQUEST, request_type=FORM, response=ACCESS_TOKEN,
           errors=(400, 401), error_type="application/json", error_schema=OAUTH_ERROR)
async def token(request: Request) -> Response:
    endpoint = TokenEndpoint(auth_of(request).logins)
    try:
        form = _form(request.headers.get("content-type", ""), await request.body())
        _checked(request, form)
    except OAuth2Error as error:
        return _response(*error())
    # Transport security is the deployment's (TLS here, or at a reverse proxy whose hop to
    # this server is plain HTTP on a private network: docs/security.md); Authlib, which
    # sees only this hop, would refuse the latter.
    uri = str(request.url.replace(scheme="https"))
    oauth_request = _Request(uri, request.headers, form)  # Headers: any case
    status, body, headers = await anyio.to_thread.run_sync(endpoint.answer, oauth_request)
    await _audited(request, oauth_request, status, body)
    return _response(status, body, headers)


async def _audited(request: Request, oauth_request: OAuth2Request, status: int,
                   body: Any) -> None:
    """An entry for the token request: the client that got a token, or the refusal."""
    client = getattr(oauth_request, "client", None)
    actor = client.actor if isinstance(client, ApiTokenClient) else None
    who = audit.acting() if actor is None else replace(audit.acting(), actor=actor.name)
    resource = f"token:{client.client_id}" if isinstance(client, ApiTokenClient) else "token:?"
    error = body.get("error") if isinstance(body, dict) else None
    await audit.record(baseshift_of(request).store, [audit.entry(
        "auth.client_credentials", resource, audit.SUCCESS if status == 200 else audit.FAILURE,
        who=who, **({"error": str(error)[:100]} if error else {}))])


def routes() -> list[BaseRoute]:
    return [Route(TOKEN_PATH, token, methods=["POST"], name="auth:token")]
