"""The auth API (the seed's section 4.1.4): login, refresh, logout, the current actor, the
JWKS, password change, and one's API tokens."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from baseshift.core.access import SERVER, TOKENS_ADMIN, TOKENS_OWN, Grant
from baseshift.core.errors import InputError
from baseshift.core.identity import ApiTokenRecord
from baseshift.web.access import actor_of, check, public, requires
from baseshift.web.limits import FlagParam
from baseshift.web.openapi import operation
from baseshift.web.responses import JSONResponse
from baseshift.web.schemas import obj

from .administration import create_own_token, own_tokens
from .administration import revoke_token as revoke_own_or_any
from .http import auth_of, client_of, json_body
from .rbac import grants_allow

TAGS = ["auth"]
ALL_USERS = FlagParam("all")
STRING = {"type": "string", "minLength": 1}
LOGIN_BODY = obj({"username": STRING, "password": STRING, "totp_token": STRING},
                 ("username", "password"), closed=True)
PASSWORD_BODY = obj({"username": STRING, "password": STRING, "new_password": STRING,
                     "totp_token": STRING}, ("username", "password", "new_password"),
                    closed=True)
REFRESH_BODY = obj({"refresh_token": STRING}, ("refresh_token",), closed=True)
TOKEN_PAIR = obj({"access_token": STRING, "refresh_token": STRING,
                  "token_type": {"enum": ["Bearer"]}, "expires_in": {"type": "integer"}},
                 ("access_token", "refresh_token", "token_type", "expires_in"))
GRANT = obj({"role": STRING, "scope": STRING}, ("role",), closed=True)
"""A role, everywhere (`scope` `*`, the default) or on the workflows matching `scope`."""
ACTOR = obj({"id": STRING, "name": STRING, "kind": STRING, "user": STRING,
             "roles": {"type": "array", "items": GRANT},
             "permissions": {"type": "array", "items": STRING}}, ("id", "name", "kind"))
TOKEN = obj({"id": STRING, "name": STRING, "user": STRING,
             "roles": {"type": "array", "items": GRANT},
             "created_at": {"type": "number"}, "expires_at": {"type": ["number", "null"]},
             "revoked_at": {"type": ["number", "null"]}}, ("id", "name"))
NEW_TOKEN_BODY = obj({"name": STRING, "roles": {"type": "array", "minItems": 1,
                                                 "items": {"anyOf": [STRING, GRANT]}},
                      "expires_in": {"type": "number", "exclusiveMinimum": 0}},
                     ("name", "roles"), closed=True)




def _text(body: dict[str, Any], field: str, *, required: bool = True) -> str | None:
    value = body.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise InputError(f"field '{field}' must be a non-empty string",
                         details={"field": field})
    return value



@public("signing in is how a client gets credentials")
@operation("Sign in with user name, password and TOTP code: an access and a refresh token",
           tags=TAGS, request=LOGIN_BODY, response=TOKEN_PAIR, errors=(400, 401, 403, 422, 429))
async def login(request: Request) -> Response:
    body = await json_body(request, {"username", "password", "totp_token"})
    pair = await auth_of(request).logins.login(
        str(_text(body, "username")), str(_text(body, "password")),
        _text(body, "totp_token", required=False), client_of(request))
    return JSONResponse(pair.json())


@public("changing a password proves itself with the old one (and the TOTP code)")
@operation("Change one's password (required after a temporary one): a new token pair",
           tags=TAGS, request=PASSWORD_BODY, response=TOKEN_PAIR,
           errors=(400, 401, 403, 422, 429))
async def change_password(request: Request) -> Response:
    body = await json_body(request, {"username", "password", "new_password", "totp_token"})
    pair = await auth_of(request).logins.change_password(
        str(_text(body, "username")), str(_text(body, "password")),
        str(_text(body, "new_password")), _text(body, "totp_token", required=False),
        client_of(request))
    return JSONResponse(pair.json())


@public("the refresh token in the body is the credential")
@operation("Trade a refresh token for a new pair (the old one is spent; reusing it ends the "
           "session)", tags=TAGS, request=REFRESH_BODY, response=TOKEN_PAIR,
           errors=(400, 401, 422))
async def refresh(request: Request) -> Response:
    body = await json_body(request, {"refresh_token"})
    pair = await auth_of(request).logins.refresh(str(_text(body, "refresh_token")))
    return JSONResponse(pair.json())


@public("the refresh token in the body is the credential")
@operation("Sign out: the refresh token and every token of its session are revoked",
           tags=TAGS, request=REFRESH_BODY, status=204, errors=(400, 422))
async def logout(request: Request) -> Response:
    body = await json_body(request, {"refresh_token"})
    await auth_of(request).logins.logout(_text(body, "refresh_token"))
    return Response(status_code=204)


@public("the JWKS: public keys that verify access tokens, for workers and other servers")
async def jwks(request: Request) -> Response:
    return JSONResponse(await auth_of(request).logins.tokens.jwks(),
                        headers={"Cache-Control": "max-age=300"})


def grant_json(grant: Grant) -> dict[str, str]:
    return {"role": grant.role, "scope": grant.scope}


@requires(TOKENS_OWN)
@operation("Who is signed in: the actor, its roles and the permissions they give",
           tags=TAGS, response=ACTOR, errors=(401,))
async def current_user(request: Request) -> Response:
    actor, state = actor_of(request), auth_of(request)
    roles = await state.accounts.roles()
    permissions = sorted(name for name, permission in state.permissions.items()
                         if grants_allow(actor.grants, roles, permission, name, SERVER))
    return JSONResponse({"id": actor.id, "name": actor.name, "kind": actor.kind.value,
                         "user": actor.user, "roles": [grant_json(g) for g in actor.grants],
                         "permissions": permissions})


def token_json(token: ApiTokenRecord, user: str) -> dict[str, Any]:
    return {"id": token.id, "name": token.name, "user": user,
            "roles": [grant_json(g) for g in token.grants], "created_at": token.created_at,
            "expires_at": token.expires_at, "revoked_at": token.revoked_at}


def grants_from(value: Any) -> list[Grant]:
    if not isinstance(value, list):
        raise InputError("field 'roles' must be a list of {role, scope}",
                         details={"field": "roles"})
    grants = []
    for item in value:
        if isinstance(item, str):
            item = {"role": item}
        if not isinstance(item, dict) or not isinstance(item.get("role"), str) \
                or not isinstance(item.get("scope", "*"), str) or set(item) - {"role", "scope"}:
            raise InputError("each role is a name or {role, scope}", details={"field": "roles"})
        grants.append(Grant(item["role"], item.get("scope", "*") or "*"))
    return grants


@requires(TOKENS_OWN)
@operation("Make an API token for oneself (shown once), with roles one holds", tags=TAGS,
           request=NEW_TOKEN_BODY, response=obj({"token": STRING, "api_token": TOKEN}),
           status=201, errors=(400, 401, 403, 404, 422))
async def create_token(request: Request) -> Response:
    actor, state = actor_of(request), auth_of(request)
    body = await json_body(request, {"name", "roles", "expires_in"})
    name = str(_text(body, "name"))
    grants = grants_from(body.get("roles"))
    expires = body.get("expires_in")
    if expires is not None and (not isinstance(expires, int | float) or expires <= 0):
        raise InputError("field 'expires_in' must be a positive number of seconds",
                         details={"field": "expires_in"})
    record, secret = await create_own_token(state, actor, name, grants, expires)
    return JSONResponse({"token": secret, "api_token": token_json(record, actor.person)},
                        status_code=201)


@requires(TOKENS_OWN)
@operation("One's API tokens (every user's with ?all=true and tokens:admin)", tags=TAGS,
           response={"type": "array", "items": TOKEN}, params=(ALL_USERS,), errors=(400,))
async def list_tokens(request: Request) -> Response:
    state, actor = auth_of(request), actor_of(request)
    everyone = ALL_USERS.read(request)
    if everyone:
        await check(request, TOKENS_ADMIN.name)
    users = {u.id: u.name for u in await state.accounts.store.list_users()}
    tokens = (await state.accounts.store.list_api_tokens(None) if everyone
              else await own_tokens(state, actor))
    return JSONResponse([token_json(t, users.get(t.user_id, "?")) for t in tokens])


@requires(TOKENS_OWN)
@operation("Revoke an API token (one's own; anyone's with tokens:admin)", tags=TAGS,
           status=204, errors=(401, 403, 404))
async def revoke_token(request: Request) -> Response:
    state, actor = auth_of(request), actor_of(request)
    await revoke_own_or_any(state, actor, request.path_params["token_id"],
                       lambda: check(request, TOKENS_ADMIN.name))
    return Response(status_code=204)


def routes() -> list[BaseRoute]:
    prefix = "/api/v1/auth"
    return [
        Route(f"{prefix}/login", login, methods=["POST"], name="auth:login"),
        Route(f"{prefix}/password", change_password, methods=["POST"], name="auth:password"),
        Route(f"{prefix}/refresh", refresh, methods=["POST"], name="auth:refresh"),
        Route(f"{prefix}/logout", logout, methods=["POST"], name="auth:logout"),
        Route(f"{prefix}/user", current_user, methods=["GET"], name="auth:user"),
        Route(f"{prefix}/tokens", list_tokens, methods=["GET"], name="auth:tokens"),
        Route(f"{prefix}/tokens", create_token, methods=["POST"], name="auth:create-token"),
        Route(f"{prefix}/tokens/{{token_id}}", revoke_token, methods=["DELETE"],
              name="auth:revoke-token"),
        Route("/.well-known/jwks.json", jwks, methods=["GET"], name="auth:jwks"),
    ]
