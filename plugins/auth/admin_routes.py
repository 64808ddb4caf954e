"""Administering accounts over the API: users (create, disable, password, roles, MFA reset)
and roles (custom ones, and the MFA flag of the builtin ones)."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from baseshift.core.access import ROLES_ADMIN, USERS_ADMIN, Role
from baseshift.core.errors import InputError
from baseshift.core.identity import UserRecord
from baseshift.web.access import actor_of, requires
from baseshift.web.openapi import operation
from baseshift.web.responses import JSONResponse
from baseshift.web.schemas import PERMISSION, obj

from .administration import delete_role as remove_role
from .administration import save_role, within_own
from .http import auth_of, json_body
from .routes import GRANT, STRING, grant_json, grants_from
from .state import AuthState

TAGS = ["access"]
FLAG = {"type": "boolean"}
GRANTS = {"type": "array", "items": {"anyOf": [STRING, GRANT]}}
USER = obj({"id": STRING, "name": STRING, "roles": GRANTS, "disabled": FLAG, "mfa": FLAG,
            "must_change_password": FLAG, "source": STRING},
           ("id", "name", "roles", "disabled", "mfa"))
USER_NAME = {"type": "string", "pattern": "^[a-z0-9._@-]{1,64}$"}
PASSWORD = {"type": "string", "minLength": 12, "maxLength": 1024,
            "description": "at least 12 characters, not the user name, not a common one"}
NEW_USER = obj({"name": USER_NAME, "password": PASSWORD, "roles": GRANTS, "temporary": FLAG,
                "totp": FLAG}, ("name", "roles"), closed=True)
USER_CHANGE = obj({"disabled": FLAG, "password": PASSWORD, "temporary": FLAG}, closed=True)
ROLES_BODY = obj({"roles": GRANTS}, ("roles",), closed=True)
ROLE = obj({"name": STRING, "summary": {"type": "string"}, "mfa": FLAG, "builtin": FLAG,
            "permissions": {"type": "array", "items": STRING}},
           ("name", "permissions", "mfa", "builtin"))
ROLE_BODY = obj({"summary": {"type": "string"}, "mfa": FLAG,
                 "permissions": {"type": "array", "items": PERMISSION}}, ("permissions",),
                closed=True)
NAME = {"name": USER_NAME}




def _flag(body: dict[str, Any], field: str) -> bool:
    value = body.get(field, False)
    if not isinstance(value, bool):
        raise InputError(f"field '{field}' must be true or false", details={"field": field})
    return value


def _password(body: dict[str, Any]) -> str | None:
    if "password" not in body:
        return None
    value = body["password"]
    if not isinstance(value, str) or not value:
        raise InputError("field 'password' must be a non-empty string",
                         details={"field": "password"})
    return value


async def user_json(state: AuthState, user: UserRecord) -> dict[str, Any]:
    grants = await state.accounts.store.grants_of(user.id)
    return {"id": user.id, "name": user.name, "roles": [grant_json(g) for g in grants],
            "disabled": user.disabled, "mfa": user.totp_confirmed,
            "must_change_password": user.must_change_password, "source": user.source}


@requires(USERS_ADMIN)
@operation("Every user, with roles and MFA", tags=TAGS, response={"type": "array", "items": USER})
async def list_users(request: Request) -> Response:
    state = auth_of(request)
    return JSONResponse([await user_json(state, u)
                         for u in await state.accounts.store.list_users()])


@requires(USERS_ADMIN)
@operation("Create a user (with `totp`, enrolled at once: the answer holds its URI)",
           tags=TAGS, request=NEW_USER,
           response=obj({"user": USER, "totp_uri": {"type": ["string", "null"]}}),
           status=201, errors=(404, 409, 422))
async def create_user(request: Request) -> Response:
    body = await json_body(request, {"name", "password", "roles", "temporary", "totp"})
    name = body.get("name")
    if not isinstance(name, str):
        raise InputError("field 'name' must be a string", details={"field": "name"})
    state = auth_of(request)
    grants = grants_from(body.get("roles"))
    await within_own(state, actor_of(request), grants)
    user, uri = await state.accounts.add_user(
        name, _password(body), grants,
        temporary=_flag(body, "temporary"), totp=_flag(body, "totp"))
    return JSONResponse({"user": await user_json(state, user), "totp_uri": uri},
                        status_code=201)


@requires(USERS_ADMIN)
@operation("One user", tags=TAGS, response=USER, errors=(404,), path=NAME)
async def get_user(request: Request) -> Response:
    state = auth_of(request)
    return JSONResponse(await user_json(state, await state.accounts.user(
        request.path_params["name"])))


@requires(USERS_ADMIN)
@operation("Disable or enable a user (ending their sessions), or set a password "
           "(`temporary`: changed at the next sign-in)", tags=TAGS, request=USER_CHANGE,
           response=USER, errors=(404, 422), path=NAME)
async def change_user(request: Request) -> Response:
    body = await json_body(request, {"disabled", "password", "temporary"})
    state, name = auth_of(request), request.path_params["name"]
    user = await state.accounts.user(name)
    if "disabled" in body:
        user = await state.accounts.set_disabled(name, _flag(body, "disabled"))
    password = _password(body)
    if password is not None:
        user = await state.accounts.set_password(name, password,
                                                 temporary=_flag(body, "temporary"))
    return JSONResponse(await user_json(state, user))


@requires(USERS_ADMIN)
@operation("Replace a user's roles", tags=TAGS, request=ROLES_BODY, response=USER,
           errors=(404, 422), path=NAME)
async def set_roles(request: Request) -> Response:
    body = await json_body(request, {"roles"})
    state, name = auth_of(request), request.path_params["name"]
    grants = grants_from(body.get("roles"))
    await within_own(state, actor_of(request), grants)
    await state.accounts.set_grants(name, grants)
    return JSONResponse(await user_json(state, await state.accounts.user(name)))


@requires(USERS_ADMIN)
@operation("Remove a user's TOTP and recovery codes (the next sign-in enrols anew)",
           tags=TAGS, response=USER, errors=(404,), path=NAME)
async def reset_mfa(request: Request) -> Response:
    state = auth_of(request)
    user = await state.accounts.reset_mfa(request.path_params["name"])
    return JSONResponse(await user_json(state, user))


def role_json(role: Role) -> dict[str, Any]:
    return {"name": role.name, "summary": role.summary, "mfa": role.mfa,
            "builtin": role.builtin, "permissions": sorted(role.permissions)}


@requires(ROLES_ADMIN)
@operation("Every role and its permissions", tags=TAGS,
           response={"type": "array", "items": ROLE})
async def list_roles(request: Request) -> Response:
    roles = await auth_of(request).accounts.store.roles()
    return JSONResponse([role_json(r) for r in roles])


@requires(ROLES_ADMIN)
@operation("Create or replace a custom role; of a builtin one only `mfa` changes",
           tags=TAGS, request=ROLE_BODY, response=ROLE, errors=(409, 422), path=NAME)
async def put_role(request: Request) -> Response:
    body = await json_body(request, {"summary", "mfa", "permissions"})
    state = auth_of(request)
    permissions = body.get("permissions")
    if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
        raise InputError("field 'permissions' must be a list of permission names",
                         details={"field": "permissions"})
    summary = body.get("summary", "")
    if not isinstance(summary, str):
        raise InputError("field 'summary' must be a string", details={"field": "summary"})
    role = await save_role(state, actor_of(request), request.path_params["name"],
                           permissions, summary,
                           _flag(body, "mfa"))
    return JSONResponse(role_json(role))


@requires(ROLES_ADMIN)
@operation("Delete a custom role (its grants go with it)", tags=TAGS, status=204,
           errors=(404, 409), path=NAME)
async def delete_role(request: Request) -> Response:
    await remove_role(auth_of(request), request.path_params["name"])
    return Response(status_code=204)


def routes() -> list[BaseRoute]:
    user = "/api/v1/users/{name}"
    return [
        Route("/api/v1/users", list_users, methods=["GET"], name="auth:users"),
        Route("/api/v1/users", create_user, methods=["POST"], name="auth:create-user"),
        Route(user, get_user, methods=["GET"], name="auth:user-get"),
        Route(user, change_user, methods=["PATCH"], name="auth:user-change"),
        Route(user + "/roles", set_roles, methods=["PUT"], name="auth:user-roles"),
        Route(user + "/reset-mfa", reset_mfa, methods=["POST"], name="auth:user-reset-mfa"),
        Route("/api/v1/roles", list_roles, methods=["GET"], name="auth:roles"),
        Route("/api/v1/roles/{name}", put_role, methods=["PUT"], name="auth:role-put"),
        Route("/api/v1/roles/{name}", delete_role, methods=["DELETE"], name="auth:role-delete"),
    ]
