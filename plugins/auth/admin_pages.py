"""The administration pages of the web UI, the HTML twins of the users, roles and tokens API:
users (`users:admin`), roles (`roles:admin`) and one's own API tokens (`tokens:own`).

Every form of a page posts back to the page's own address naming its action in `do` (as
the run page does), so a reload after a refusal never reaches a POST-only path. Success
answers 303 See Other to the page; a refusal shows the page again with the reason above the
form that was sent and what was typed (never a password), as 422 (403 when rights lack), the
status the UI's htmx configuration swaps in. A new token's secret is shown in the answer to
its form only: never in a URL, never stored, never listed."""
from __future__ import annotations

import argparse
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from baseshift.core.access import ROLES_ADMIN, TOKENS_ADMIN, TOKENS_OWN, USERS_ADMIN, Grant
from baseshift.core.errors import Conflict, Forbidden, InputError, NotFound
from baseshift.core.identity import ApiTokenRecord, UserRecord
from baseshift.web.access import actor_of, check, requires
from baseshift.web.render import render
from baseshift.web.requests import read_form

from . import administration
from .cli import grant_of
from .http import auth_of

Form = Mapping[str, str]
REFUSALS = (InputError, NotFound, Conflict, Forbidden)
"""What an action may refuse with: shown on the page, in place. Anything else (a store
failure) is an error page."""
PERMISSION_FIELD = "permission:"
"""The prefix of a role form's checkboxes (`permission:runs:start`): a form is read as one
value per name, so each permission is a field of its own."""
UNKEPT = frozenset({"password", "csrf_token"})
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused form: where to show it (`form`, the place key each form sends; `page` when
    it names no form on the page), why, and what was typed."""

    form: str
    message: str
    values: Form = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UserRow:
    user: UserRecord
    roles: str
    """The user's grants as the forms write them: `viewer, operator:payments.*`."""


@dataclass(frozen=True, slots=True)
class TokenRow:
    token: ApiTokenRecord
    roles: str


Page = Callable[[Request, Refusal | None, int], Awaitable[Response]]
Action = Callable[[Request, Form], Awaitable[Response | None]]
"""An action of a page's form: None to answer 303 to the page, or an answer of its own."""



def roles_text(grants: Sequence[Grant]) -> str:
    return ", ".join(g.text for g in grants)


def grants_of_text(text: str) -> list[Grant]:
    """`ROLE` or `ROLE:PATTERN` items separated by commas, as the CLI's `--role` takes."""
    try:
        return [grant_of(item.strip()) for item in text.split(",") if item.strip()]
    except argparse.ArgumentTypeError as exc:
        raise InputError(str(exc), details={"field": "roles"}) from None


def _page(request: Request, template: str, status: int, refusal: Refusal | None,
          places: set[str], **context: Any) -> Response:
    if refusal is not None and refusal.form not in places:
        refusal = replace(refusal, form="page")
    response = render(request, template, {"section": "admin", "refusal": refusal, **context},
                      status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


async def _act(request: Request, actions: Mapping[str, Action], page: Page,
               done: str) -> Response:
    """Run the action the form names; a refusal shows `page` again, in place."""
    form = await read_form(request)
    action = actions.get(form.get("do", ""))
    try:
        if action is None:
            raise InputError(f"this page has no action {form.get('do', '')!r}",
                             hint=f"post one of: {', '.join(actions)}")
        answer = await action(request, form)
    except REFUSALS as exc:
        message = exc.message + (f" ({exc.hint})" if exc.hint else "")
        kept = {k: v for k, v in form.items() if k not in UNKEPT}
        return await page(request, Refusal(form.get("form", ""), message, kept),
                          403 if isinstance(exc, Forbidden) else 422)
    return answer or RedirectResponse(request.url_for(done).path, status_code=303)


def _checked(form: Form, name: str) -> bool:
    return form.get(name, "") not in ("", "false")


# --------------------------------------------------------------------------- users


async def _users_page(request: Request, refusal: Refusal | None = None,
                      status: int = 200) -> Response:
    store = auth_of(request).accounts.store
    rows = [UserRow(u, roles_text(await store.grants_of(u.id)))
            for u in await store.list_users()]
    places = {"create", *(f"user:{r.user.name}" for r in rows)}
    return _page(request, "auth/users.html", status, refusal, places, users=rows,
                 roles=sorted(r.name for r in await store.roles()))


@requires(USERS_ADMIN)
async def users(request: Request) -> Response:
    return await _users_page(request)


async def _create_user(request: Request, form: Form) -> None:
    grants = grants_of_text(form.get("roles", ""))
    await administration.within_own(auth_of(request), actor_of(request), grants)
    await auth_of(request).accounts.add_user(
        form.get("name", "").strip(), form.get("password") or None, grants,
        temporary=_checked(form, "temporary"))


async def _disable(request: Request, form: Form) -> None:
    await auth_of(request).accounts.set_disabled(form.get("name", ""), True)


async def _enable(request: Request, form: Form) -> None:
    await auth_of(request).accounts.set_disabled(form.get("name", ""), False)


async def _reset_mfa(request: Request, form: Form) -> None:
    await auth_of(request).accounts.reset_mfa(form.get("name", ""))


async def _set_roles(request: Request, form: Form) -> None:
    grants = grants_of_text(form.get("roles", ""))
    await administration.within_own(auth_of(request), actor_of(request), grants)
    await auth_of(request).accounts.set_grants(form.get("name", ""), grants)


async def _set_password(request: Request, form: Form) -> None:
    await auth_of(request).accounts.set_password(
        form.get("name", ""), form.get("password", ""), temporary=_checked(form, "temporary"))


USER_ACTIONS: dict[str, Action] = {
    "create": _create_user, "disable": _disable, "enable": _enable, "reset-mfa": _reset_mfa,
    "roles": _set_roles, "password": _set_password,
}


@requires(USERS_ADMIN)
async def users_form(request: Request) -> Response:
    return await _act(request, USER_ACTIONS, _users_page, "auth:users_page")


# --------------------------------------------------------------------------- roles


async def _roles_page(request: Request, refusal: Refusal | None = None,
                      status: int = 200) -> Response:
    state = auth_of(request)
    roles = await state.accounts.store.roles()
    places = {"save", *(f"role:{r.name}" for r in roles)}
    return _page(request, "auth/roles.html", status, refusal, places, roles=roles,
                 permissions=list(state.permissions.values()),
                 permission_field=PERMISSION_FIELD,
                 typed_permissions=permissions_of(refusal.values if refusal else {}))


@requires(ROLES_ADMIN)
async def roles(request: Request) -> Response:
    return await _roles_page(request)


def permissions_of(form: Form) -> list[str]:
    """The permissions a role form checked."""
    return [k.removeprefix(PERMISSION_FIELD) for k in form if k.startswith(PERMISSION_FIELD)]


async def _save_role(request: Request, form: Form) -> None:
    await administration.save_role(auth_of(request), actor_of(request),
                                   form.get("name", "").strip(),
                                   permissions_of(form),
                                   form.get("summary", "").strip(), _checked(form, "mfa"))


async def _role_mfa(request: Request, form: Form) -> None:
    await administration.set_role_mfa(auth_of(request), actor_of(request),
                                      form.get("name", ""),
                                      _checked(form, "mfa"))


async def _delete_role(request: Request, form: Form) -> None:
    await administration.delete_role(auth_of(request), form.get("name", ""))


ROLE_ACTIONS: dict[str, Action] = {"save": _save_role, "mfa": _role_mfa,
                                   "delete": _delete_role}


@requires(ROLES_ADMIN)
async def roles_form(request: Request) -> Response:
    return await _act(request, ROLE_ACTIONS, _roles_page, "auth:roles_page")


# --------------------------------------------------------------------------- API tokens


async def _tokens_page(request: Request, refusal: Refusal | None = None, status: int = 200,
                       created: tuple[ApiTokenRecord, str] | None = None) -> Response:
    actor = actor_of(request)
    rows = [TokenRow(t, roles_text(t.grants))
            for t in await administration.own_tokens(auth_of(request), actor)]
    places = {"create", *(f"token:{r.token.id}" for r in rows)}
    return _page(request, "auth/tokens.html", status, refusal, places, tokens=rows,
                 created=created, own_roles=roles_text(actor.grants))


@requires(TOKENS_OWN)
async def tokens(request: Request) -> Response:
    return await _tokens_page(request)


def expiry_seconds(days: str) -> float | None:
    """The lifetime a token form asks for: a positive number of days, or none (empty)."""
    if not days.strip():
        return None
    try:
        value = float(days)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"the expiry {days!r} is not a positive number of days",
                         hint="leave it empty for a token that does not expire",
                         details={"field": "expires_days"})
    return value * DAY


async def _create_token(request: Request, form: Form) -> Response:
    name = form.get("name", "").strip()
    if not name:
        raise InputError("a token needs a name", details={"field": "name"})
    grants = grants_of_text(form.get("roles", ""))
    expires = expiry_seconds(form.get("expires_days", ""))
    created = await administration.create_own_token(auth_of(request), actor_of(request), name,
                                                    grants, expires)
    return await _tokens_page(request, status=201, created=created)


async def _revoke_token(request: Request, form: Form) -> None:
    await administration.revoke_token(auth_of(request), actor_of(request),
                                      form.get("token", ""),
                                      lambda: check(request, TOKENS_ADMIN.name))


TOKEN_ACTIONS: dict[str, Action] = {"create": _create_token, "revoke": _revoke_token}


@requires(TOKENS_OWN)
async def tokens_form(request: Request) -> Response:
    return await _act(request, TOKEN_ACTIONS, _tokens_page, "auth:tokens_page")


def routes() -> list[BaseRoute]:
    return [
        Route("/ui/admin/users", users, methods=["GET"], name="auth:users_page"),
        Route("/ui/admin/users", users_form, methods=["POST"], name="auth:users_form"),
        Route("/ui/admin/roles", roles, methods=["GET"], name="auth:roles_page"),
        Route("/ui/admin/roles", roles_form, methods=["POST"], name="auth:roles_form"),
        Route("/ui/tokens", tokens, methods=["GET"], name="auth:tokens_page"),
        Route("/ui/tokens", tokens_form, methods=["POST"], name="auth:tokens_form"),
    ]
